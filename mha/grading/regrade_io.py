"""The re-grade's input and output: what it reads from notebooks, what it sends and gets back.

Used by :mod:`mha.grading.regrade` (trusted side). The source notebook (nbgrader
``source/``, with solutions) alone says which cells are answers and tests; the
student's notebook only supplies the code of its answer cells. What the sandbox
returns is parsed as data: an ``.npz`` loaded with ``allow_pickle=False`` and a
JSON report, validated field by field; anything unexpected becomes an opaque
object that no comparison accepts.
"""

from __future__ import annotations

import ast
import io
import json
import re
import struct
from typing import TYPE_CHECKING

import numpy as np

from mha.grading.checks import Case, Outcome, Run
from mha.grading.checks.core import TensorArg

if TYPE_CHECKING:
    from nbformat import NotebookNode

__all__ = ["nbgrader_meta", "answer_cells", "graded_cells", "student_code", "plain_python",
           "needed_cells",
           "prelude", "encode_job", "parse_report", "decode", "run_of"]  # fmt: skip

PRELUDE_PACKAGES = {"numpy", "torch", "math", "mha", "copy", "dataclasses", "functools"}
PRELUDE_SKIP = ("mha.grading", "mha.course", "figures", "plotting")


# ---------------------------------------------------------------------------
# Reading the source notebook (trusted) and the submission (untrusted)
# ---------------------------------------------------------------------------


def nbgrader_meta(cell: dict) -> dict:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return meta if isinstance(meta, dict) else {}


def answer_cells(source: NotebookNode) -> list:
    """The source notebook's code answer cells (``solution`` and not ``grade``)."""
    return [c for c in source.cells if c.cell_type == "code" and nbgrader_meta(c).get("solution")
            and not nbgrader_meta(c).get("grade")]  # fmt: skip


def graded_cells(source: NotebookNode) -> list:
    """The source notebook's autograded test cells (``grade`` and not ``solution``)."""
    return [c for c in source.cells if c.cell_type == "code" and nbgrader_meta(c).get("grade")
            and not nbgrader_meta(c).get("solution")]  # fmt: skip


def student_code(submission: object, source_cell: NotebookNode) -> str:
    """The student's code for ``source_cell``: same grade id, else same cell id, else ''."""
    grade_id = nbgrader_meta(source_cell).get("grade_id")
    cells = getattr(submission, "cells", None) or []
    for cell in cells:
        if isinstance(cell, dict) and nbgrader_meta(cell).get("grade_id") == grade_id:
            return str(cell.get("source", ""))
    for cell in cells:
        if isinstance(cell, dict) and source_cell.get("id") and cell.get("id") == source_cell.id:
            return str(cell.get("source", ""))
    return ""


def plain_python(code: str) -> str:
    """IPython syntax (``%magic``, ``!cmd``) as the ``get_ipython()`` calls a kernel makes."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager

        return TransformerManager().transform_cell(code)
    except Exception:  # no IPython, or code it cannot parse: the sandbox reports the error
        return code


def _inert(node: ast.stmt) -> bool:
    """Whether running ``node`` only binds names: an import, or a plain ``def``.

    A decorator, a default value or an annotation that calls something runs
    code when the ``def`` runs, so such a ``def`` is not inert.
    """
    if isinstance(node, ast.Import | ast.ImportFrom):
        return True
    if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) or node.decorator_list:
        return False
    a = node.args
    parts = [*a.defaults, *a.kw_defaults, node.returns, a.vararg, a.kwarg]
    parts += [x.annotation for x in (*a.posonlyargs, *a.args, *a.kwonlyargs)]
    return not any(isinstance(n, ast.Call | ast.Lambda | ast.NamedExpr)
                   for p in parts if p is not None for n in ast.walk(p))  # fmt: skip


def _names(code: str) -> tuple[set[str], set[str]] | None:
    """``(defined, used)`` names of a cell that only defines, or ``None`` (it must run)."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return None
    if not all(_inert(node) for node in tree.body):
        return None
    defined = set()
    for node in tree.body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            defined |= {a.asname or a.name.split(".")[0] for a in node.names}
        else:
            defined.add(node.name)
    used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    return defined, used


def needed_cells(cells: list[str], functions: set[str]) -> list[str]:
    """The answer cells the graded ``functions`` need (the others become empty).

    A cell that only defines (imports, plain ``def``\\ s) is needed when it
    defines a graded function or a name that a needed cell uses; any other cell
    (top-level code, a syntax error) always runs, as it would in the notebook.
    """
    names = [_names(code) for code in cells]
    keep = [n is None for n in names]
    wanted = set(functions)
    for i, code in enumerate(cells):
        if keep[i]:
            wanted |= set(re.findall(r"[A-Za-z_]\w*", code))
    changed = True
    while changed:
        changed = False
        for i, found in enumerate(names):
            if found and not keep[i] and found[0] & wanted:
                keep[i], changed = True, True
                wanted |= found[1]
    return [code if k else "" for code, k in zip(cells, keep, strict=True)]


def prelude(source: NotebookNode, cells: list[str] = ()) -> list[str]:
    """The setup code that the answer ``cells`` need, from the source notebook.

    From the notebook's other code cells (its setup and step-by-step cells,
    trusted code): the imports of the names the answers use (NumPy always), and
    the plain ``def``\\ s they call (a chapter's own helper), with what those use
    in turn. ``import torch`` / ``import mha`` come first when needed: loading
    PyTorch takes seconds, so only answers that may use it pay for it, and
    before the cells' time limit.
    """
    imports, defs = _setup_nodes(source)
    used = set(re.findall(r"[A-Za-z_]\w*", "\n".join(cells)))
    chosen: dict[str, ast.FunctionDef] = {}
    while new := {n: d for n, d in defs.items() if n in used and n not in chosen}:
        chosen |= new
        used |= {x.id for d in new.values() for x in ast.walk(d) if isinstance(x, ast.Name)}
    found = [f"import {m}" for m in ("torch", "mha") if m in used]
    joined = "\n".join([*cells, *(ast.unparse(d) for d in chosen.values())])
    subs = sorted(set(re.findall(r"\bmha\.([a-z]\w*)", joined)) - {"grading"})
    found += [f"import mha.{m}" for m in subs]  # mha.course.example needs mha.course loaded
    found += [code for node in imports if (code := _keep_import(node, used))]
    found += [ast.unparse(d) for n, d in defs.items() if n in chosen]
    return list(dict.fromkeys(found))


def _setup_nodes(source) -> tuple[list, dict]:
    """The imports and the top-level ``def``\\ s of the source's other code cells."""
    skip = {id(c) for c in (*answer_cells(source), *graded_cells(source))}
    imports, defs = [], {}
    for cell in source.cells:
        tagged = "solution" in cell.get("metadata", {}).get("tags", [])
        if cell.cell_type != "code" or id(cell) in skip or tagged:
            continue
        try:
            tree = ast.parse(cell.source)
        except SyntaxError:
            continue
        imports += [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
        defs |= {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    return imports, defs


def _bound(alias: ast.alias) -> str:
    return alias.asname or alias.name.split(".")[0]


def _keep_import(node: ast.Import | ast.ImportFrom, used: set[str]) -> str:
    """``node`` as code when it imports the library or a numeric package, else ''.

    Only the names in ``used`` are kept, except NumPy's (cheap, and always there).
    """
    module = node.module if isinstance(node, ast.ImportFrom) else None
    names = [a for a in node.names if not any(s in f"{module}.{a.name}" for s in PRELUDE_SKIP)]
    names = [a for a in names if _bound(a) in used or (module or a.name).startswith("numpy")]
    tops = {(module or a.name).split(".")[0] for a in names}
    if not names or not tops <= PRELUDE_PACKAGES:
        return ""
    kept = type(node)(names=names, **({"module": module, "level": 0} if module else {}))
    return ast.unparse(kept)


# ---------------------------------------------------------------------------
# The job for the sandbox, and what comes back
# ---------------------------------------------------------------------------


def _encode_args(args: tuple, key: str, arrays: dict) -> list[dict]:
    specs = []
    for i, arg in enumerate(args):
        if isinstance(arg, np.ndarray):
            arrays[f"{key}_{i}"] = arg
            specs.append({"a": f"{key}_{i}"})
        elif isinstance(arg, TensorArg):  # sent as an array, handed to the answer as a tensor
            arrays[f"{key}_{i}"] = arg.array
            specs.append({"a": f"{key}_{i}", "torch": True})
        else:
            specs.append({"v": arg.item() if isinstance(arg, np.generic) else arg})
    return specs


def encode_job(prelude: list[str], cells: list[str], exercises: list[tuple[str, list[Case]]],
               call_seconds: float, cells_seconds: float) -> bytes:  # fmt: skip
    """stdin for the runner: the JSON job and the inputs' ``.npz``.

    ``exercises`` are ``(function name, cases)``; only the cases' arguments are sent.
    """
    arrays, jobs = {}, []
    for e, (function, cases) in enumerate(exercises):
        calls = [_encode_args(c.args, f"x{e}_{j}", arrays) for j, c in enumerate(cases)]
        jobs.append({"function": function, "calls": calls, "time_limit": call_seconds})
    job = {"prelude": prelude, "cells": cells, "exercises": jobs, "cells_time_limit": cells_seconds}
    job = json.dumps(job).encode()
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return struct.pack(">Q", len(job)) + job + buffer.getvalue()


def _opaque(type_name) -> object:
    """A stand-in for a result that is not data, named after its type."""
    name = re.sub(r"\W", "", str(type_name))[:40] or "object"
    return type(name if name[0].isalpha() else "object", (), {})()


def decode(spec: object, arrays: dict, depth: int = 0) -> object:
    """A result from its JSON description; anything unexpected becomes an opaque object."""
    if not isinstance(spec, dict) or depth > 4:
        return _opaque("object")
    if "a" in spec:
        arr = arrays.get(spec["a"]) if isinstance(spec["a"], str) else None
        ok = isinstance(arr, np.ndarray) and arr.dtype.kind in "biufc"
        return arr if ok else _opaque(spec.get("type"))
    if "v" in spec:
        value = spec["v"]
        return value if value is None or type(value) in (bool, int, float) else _opaque("object")
    if isinstance(spec.get("seq"), list):
        items = [decode(s, arrays, depth + 1) for s in spec["seq"][:8]]
        length = spec.get("len")
        if isinstance(length, int) and len(items) < length <= 1000:
            items += [_opaque("object")] * (length - len(items))
        return tuple(items) if spec.get("type") == "tuple" else items
    return _opaque(spec.get("type"))


def _outcome(call, arrays: dict) -> Outcome:
    if not isinstance(call, dict):
        return Outcome(False, None, "the result could not be read back", "Result")
    if call.get("ok") is True:
        return Outcome(True, decode(call.get("value"), arrays))
    text = lambda k: str(call.get(k, ""))[:600]  # noqa: E731
    return Outcome(False, None, text("error"), text("error_type"), text("where"))


def run_of(found: object, cases: list[Case], arrays: dict) -> Run:
    """The :class:`Run` of one exercise from the sandbox's report on it."""
    if not isinstance(found, dict):
        return Run(problem="crash", detail="no report")
    status = found.get("status")
    if status == "timeout":
        return Run(problem="timeout")
    calls = found.get("calls")
    if status != "done" or not isinstance(calls, list) or len(calls) != len(cases):
        return Run(problem="crash", detail=str(found.get("detail", status))[:100])
    # What the function printed stays out of the feedback: it could carry the hidden inputs.
    return Run([_outcome(c, arrays) for c in calls])


def parse_report(data: bytes) -> tuple[dict, dict]:
    """The runner's report and result arrays; ``({}, {})`` when they cannot be read."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as got:
            arrays = {k: got[k] for k in got.files if k != "__meta__"}
            report = json.loads(got["__meta__"].tobytes())
        return (report, arrays) if isinstance(report, dict) else ({}, {})
    except Exception:  # truncated, tampered with, or nothing written at all
        return {}, {}
