"""Chapter 7: experiments that test the article's claims about multi-head attention.

* :mod:`mha.experiments.tasks`: the synthetic, seeded task (no downloads);
* :mod:`mha.experiments.train`: a small deterministic CPU training loop;
* :mod:`mha.experiments.metrics`: head roles, importance and pruning;
* :mod:`mha.experiments.sweeps`: the four sweeps; ``python -m mha.experiments``
  runs them and writes ``mha/results/<sweep>.json``, which
  :func:`load_results` reads back.
"""

from __future__ import annotations

import json
import os
from importlib import resources
from pathlib import Path

__all__ = ["load_results"]


def load_results(name: str) -> dict:
    """The committed result of sweep ``name`` (``mha/results/<name>.json``), Chapter 7.

    With the environment variable ``MHA_RESULTS`` set to a folder, the file is
    read from there instead (to preview a run in progress, ``--out`` of
    ``python -m mha.experiments``).
    """
    folder = os.environ.get("MHA_RESULTS")
    path = (
        Path(folder) / f"{name}.json"
        if folder
        else resources.files("mha") / "results" / f"{name}.json"
    )
    if not path.is_file():
        raise ValueError(
            f"no committed result {name!r}: expected mha/results/{name}.json; "
            f"run `python -m mha.experiments {name}`"
        )
    return json.loads(path.read_text())
