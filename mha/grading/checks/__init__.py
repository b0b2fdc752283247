"""Exercise checkers: run a learner's function, compare it with ``mha``, name the bug.

Every coding exercise of the course asks for one function (``my_softmax``,
``my_attention``, ...). The matching checker, for example
``mha.grading.checks.check_softmax(my_softmax)``, runs that function on several inputs,
edge cases included, compares each result with the reference in ``mha``, prints
a friendly verdict and returns ``True`` or ``False``. It never raises.

When a result is wrong, the checker also runs the classic buggy variants of
the exercise on the same inputs (scaling by ``sqrt(d_model)``, reshaping
without transposing, a mask with the wrong convention, ...). If the learner's
output equals one of them, the verdict names that bug.

The learner's function runs in a separate process (``fork``) with a time
limit (:mod:`~mha.grading.checks.isolation`), so an exception, an endless loop
or a crash cannot take the notebook down with it. That protects the notebook
from mistakes, not the grade from cheating: :mod:`mha.grading.regrade` re-runs
the answers in a sandbox on hidden inputs for that.

One module per chapter, named after the chapter's notebook, and a shared core:

* :mod:`~mha.grading.checks.core`: :class:`Case`, :func:`evaluate`, :func:`verdict`,
  :class:`Exercise`;
* :mod:`~mha.grading.checks.isolation`: :func:`run_isolated` and the time limit;
* ``self_attention`` (Chapter 1), ``projections`` (2), ``parallel_heads`` (3),
  ``concatenation`` (4), ``output_projection`` (5), ``encoder`` (6), ``experiments`` (7);
  ``real_heads`` (8), ``cost_and_flash`` (9), ``decoding`` (10) and ``tensor_parallel`` (11)
  hold only exercises for the re-grade.

:data:`EXERCISES` maps each checker's name to its :class:`Exercise`; :data:`BY_FUNCTION`
holds the exercises whose check cells only ``assert`` (keyed by the function's name).
"""

from __future__ import annotations

from mha.grading.checks import (
    concatenation,
    cost_and_flash,
    decoding,
    encoder,
    experiments,
    output_projection,
    parallel_heads,
    projections,
    real_heads,
    self_attention,
    tensor_parallel,
)
from mha.grading.checks.concatenation import _MERGE_BUGS, check_merge_heads
from mha.grading.checks.core import FAIL, PASS, Case, Exercise, evaluate, same, verdict
from mha.grading.checks.encoder import (
    _FFN_BUGS,
    _NORM_BUGS,
    _PE_BUGS,
    check_add_and_norm,
    check_feed_forward,
    check_positional_encoding,
)
from mha.grading.checks.experiments import _OFFSET_BUGS, check_offset_share
from mha.grading.checks.isolation import TIME_LIMIT, Outcome, Run, run_isolated
from mha.grading.checks.output_projection import (
    _CAUSAL_BUGS,
    _MHA_BUGS,
    _PADDING_BUGS,
    check_causal_mask,
    check_expand_padding_mask,
    check_multi_head_attention,
)
from mha.grading.checks.parallel_heads import _SPLIT_BUGS, check_split_heads
from mha.grading.checks.projections import _HEAD_PROJECTION_BUGS, check_head_projections
from mha.grading.checks.self_attention import (
    _ATTENTION_BUGS,
    _SOFTMAX_BUGS,
    check_attention,
    check_softmax,
)

__all__ = [
    "TIME_LIMIT",
    "PASS",
    "FAIL",
    "Case",
    "Exercise",
    "Outcome",
    "Run",
    "EXERCISES",
    "BY_FUNCTION",
    "evaluate",
    "verdict",
    "same",
    "run_isolated",
    "check_softmax",
    "check_attention",
    "check_head_projections",
    "check_split_heads",
    "check_merge_heads",
    "check_multi_head_attention",
    "check_causal_mask",
    "check_expand_padding_mask",
    "check_positional_encoding",
    "check_add_and_norm",
    "check_feed_forward",
    "check_offset_share",
]

_CHAPTERS = (self_attention, projections, parallel_heads, concatenation, output_projection,
             encoder, experiments)  # fmt: skip
EXERCISES: dict[str, Exercise] = {k: v for m in _CHAPTERS for k, v in m.EXERCISES.items()}
# Exercises graded by an assert on the notebook's state, keyed by the function's name.
BY_FUNCTION: dict[str, Exercise] = {
    k: v for m in (self_attention, projections, parallel_heads, concatenation, real_heads,
                   cost_and_flash, decoding, tensor_parallel)
    for k, v in m.BY_FUNCTION.items()
}  # fmt: skip

# The bug tables, for the tests (each chapter module owns its own).
_BUG_TABLES = (_SOFTMAX_BUGS, _ATTENTION_BUGS, _HEAD_PROJECTION_BUGS, _SPLIT_BUGS, _MERGE_BUGS,
               _MHA_BUGS, _CAUSAL_BUGS, _PADDING_BUGS, _PE_BUGS, _NORM_BUGS, _FFN_BUGS,
               _OFFSET_BUGS)  # fmt: skip
