"""The checkers of Chapters 6 and 7 under their old name (the chapters' check cells use it).

They live in :mod:`mha.grading.checks.encoder` (Chapter 6) and
:mod:`mha.grading.checks.experiments` (Chapter 7); this module re-exports them.
"""

from __future__ import annotations

from mha.grading.checks.core import Case, evaluate
from mha.grading.checks.encoder import (
    _FFN_BUGS,
    _NORM_BUGS,
    _PE_BUGS,
    _pe_variant,
    check_add_and_norm,
    check_feed_forward,
    check_positional_encoding,
)
from mha.grading.checks.experiments import _OFFSET_BUGS, check_offset_share
from mha.grading.checks.isolation import TIME_LIMIT

__all__ = [
    "check_positional_encoding",
    "check_add_and_norm",
    "check_feed_forward",
    "check_offset_share",
]

_BUG_TABLES = (_PE_BUGS, _NORM_BUGS, _FFN_BUGS, _OFFSET_BUGS)
_UNUSED = (Case, evaluate, TIME_LIMIT, _pe_variant)  # re-exported for older imports
