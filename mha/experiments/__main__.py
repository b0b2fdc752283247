"""Run the sweeps of Chapter 7: ``python -m mha.experiments <sweep|all> [options]``.

Each sweep writes ``mha/results/<sweep>.json`` with the command, the
configuration, the seeds, the package versions and every number.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import torch

from mha.experiments.sweeps import SWEEPS, run_sweep

RESULTS = Path(__file__).resolve().parent.parent / "results"


def dumps(result: dict) -> str:
    """JSON with one key per line, but every list of plain numbers on a single line."""
    text = json.dumps(result, indent=1)
    one_line = lambda m: " ".join(m.group().split()).replace("[ ", "[").replace(" ]", "]")  # noqa: E731
    return re.sub(r"\[[-+0-9.eE,\s]*\]", one_line, text) + "\n"


def _ints(text: str) -> list[int]:
    return [int(t) for t in text.split(",") if t]


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m mha.experiments", description=__doc__)
    parser.add_argument("sweep", choices=[*SWEEPS, "all"])
    parser.add_argument("--heads", type=_ints, help="comma-separated head counts (default: all)")
    parser.add_argument("--seeds", type=_ints, help="comma-separated seeds (default: all)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="output folder")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # deterministic, and fair to a shared machine
    args.out.mkdir(parents=True, exist_ok=True)
    for name in SWEEPS if args.sweep == "all" else [args.sweep]:
        start = time.perf_counter()
        result = run_sweep(name, args.heads, args.seeds, progress=not args.no_progress)
        command = ["python", "-m", "mha.experiments", name, *argv[1:]]
        result = {"command": " ".join(command), **result}
        path = args.out / f"{name}.json"
        path.write_text(dumps(result))
        print(f"{name}: {time.perf_counter() - start:.0f} s -> {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
