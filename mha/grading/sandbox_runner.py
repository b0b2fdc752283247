"""The sandbox's side of the re-grade: run a student's answer cells, call their functions.

This file is copied into the sandbox and run there as a script, by
:mod:`mha.grading.sandbox`; it imports nothing from the course but NumPy (and
PyTorch only if the student's code loaded it). Everything in this process is
untrusted: the student's top-level code runs here first and may change anything.
It can only spoil its own results, which the trusted grader
(:mod:`mha.grading.regrade`) reads back as plain data and judges.

Protocol. Arguments: the result pipe's file descriptor, the library copy's
folder, then site-packages folders.
Standard input: an 8-byte big-endian length, a JSON job, then an ``.npz`` of
the input arrays. The job holds ``prelude`` (import statements), ``cells``
(answer code), ``cells_time_limit`` (seconds for their top-level code) and
``exercises`` (``function``, ``calls``, ``time_limit``); an
argument is ``{"a": key}`` (an array of the ``.npz``) or ``{"v": value}``.
The result pipe receives one ``.npz`` of result arrays whose ``__meta__``
entry is the JSON report (UTF-8 bytes as ``uint8``).
"""

import io
import json
import linecache
import os
import resource
import select
import signal
import struct
import sys
import time
import traceback

MAX_TEXT = 600  # characters kept of an error message or of printed output
MAX_ITEMS = 8  # elements of a returned tuple or list that are read back
MAX_RESULT_BYTES = 8 << 20  # one returned array


def _text(s: str) -> str:
    return s if len(s) <= MAX_TEXT else s[: MAX_TEXT - 3] + "..."


def _where(exc: BaseException) -> str:
    """The student's line that raised (a frame of an answer cell or the library copy)."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename != __file__]
    if not frames:
        return ""
    last = frames[-1]
    place = last.filename if last.filename.startswith("<answer") else "mha"
    return _text(f"{place}, line {last.lineno}: {(last.line or '').strip()}")


def _error(exc: BaseException) -> dict:
    msg = f"{type(exc).__name__}: {exc}".strip().rstrip(":")
    return {"ok": False, "error": _text(msg), "error_type": type(exc).__name__[:60],
            "where": _where(exc)}  # fmt: skip


class _CappedText(io.TextIOBase):
    """A stdout that keeps the first ``MAX_TEXT`` characters and drops the rest."""

    def __init__(self):
        self.kept = []
        self.size = 0

    def write(self, s):
        s = str(s)
        if self.size < MAX_TEXT:
            self.kept.append(s[: MAX_TEXT - self.size])
        self.size += len(s)
        return len(s)

    def value(self) -> str:
        return "".join(self.kept)


def _encode(value, key: str, arrays: dict, np) -> dict:
    """``value`` as JSON (arrays go to ``arrays``); objects are read here, in the sandbox."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    if isinstance(value, tuple | list):
        items = [_encode(v, f"{key}_{i}", arrays, np) for i, v in enumerate(value[:MAX_ITEMS])]
        return {"seq": items, "type": type(value).__name__, "len": len(value)}
    if value is None or type(value) in (bool, int, float):
        return {"v": value}
    if isinstance(value, np.generic) and value.dtype.kind in "biuf":
        return {"v": value.item()}
    if isinstance(value, str | dict | bytes):
        return {"type": type(value).__name__}
    try:
        arr = np.asarray(value)
    except BaseException:
        return {"type": type(value).__name__}
    if arr.dtype.hasobject or arr.dtype.kind not in "biufc" or arr.nbytes > MAX_RESULT_BYTES:
        return {"type": type(value).__name__}
    arrays[key] = np.ascontiguousarray(arr)
    return {"a": key, "type": type(value).__name__}


def _arg(spec: dict, inputs):
    if "a" not in spec:
        return spec["v"]
    if spec.get("torch"):  # the exercise works on tensors (Chapter 10): torch is imported here
        import torch

        return torch.from_numpy(inputs[spec["a"]].copy())
    return inputs[spec["a"]]


def _run_exercise(index: int, exercise: dict, namespace: dict, inputs, np) -> dict:
    """Body of a forked child: call the function on every input."""
    fn = namespace.get(exercise["function"])
    if fn is None:
        return {"status": "missing"}
    if not callable(fn):
        return {"status": "not-callable", "type": type(fn).__name__[:60]}
    buffer, arrays, calls = _CappedText(), {}, []
    sys.stdout = sys.stderr = buffer
    for j, args in enumerate(exercise["calls"]):
        try:
            with np.errstate(all="ignore"):
                value = fn(*(_arg(a, inputs) for a in args))
            calls.append({"ok": True, "value": _encode(value, f"e{index}_c{j}", arrays, np)})
        except BaseException as exc:  # the student's code may raise anything
            calls.append(_error(exc))
    sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
    return {"status": "done", "calls": calls, "printed": buffer.value(), "arrays": arrays}


def _pack(report: dict, arrays: dict, np) -> bytes:
    meta = np.frombuffer(json.dumps(report, allow_nan=True).encode(), dtype=np.uint8)
    out = io.BytesIO()
    np.savez(out, __meta__=meta, **arrays)
    return out.getvalue()


def _read_all(fd: int, deadline: float) -> tuple[bytes, bool]:
    """Read ``fd`` until EOF or ``deadline``; ``(data, finished)``."""
    chunks = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            return b"".join(chunks), False
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            return b"".join(chunks), True
        chunks.append(chunk)


def _fork_exercise(index: int, exercise: dict, namespace: dict, inputs, np) -> tuple[dict, dict]:
    """Run one exercise in a forked child with its own time limit."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.close(read)
        try:
            result = _run_exercise(index, exercise, namespace, inputs, np)
            arrays = result.pop("arrays", {})
            _write_all(write, _pack(result, arrays, np))
        finally:
            _real_exit(0)
    os.close(write)
    data, finished = _read_all(read, time.monotonic() + exercise["time_limit"])
    os.close(read)
    if not finished:
        os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    if not finished:
        return {"status": "timeout"}, {}
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as got:
            arrays = {k: got[k] for k in got.files if k != "__meta__"}
            return json.loads(got["__meta__"].tobytes()), arrays
    except Exception:
        code = os.waitstatus_to_exitcode(status)
        return {"status": "crash", "detail": f"exit code {code}"}, {}


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _exec_cells(cells: list[str], namespace: dict, kind: str) -> list[dict]:
    """Run each cell's code; an error in one cell does not stop the next."""
    errors = []
    for i, code in enumerate(cells):
        name = f"<{kind} {i + 1}>"
        linecache.cache[name] = (len(code), None, code.splitlines(True), name)
        try:
            exec(compile(code, name, "exec"), namespace)
        except BaseException as exc:  # SystemExit from exit() included
            errors.append({"cell": i + 1, **_error(exc)})
    return errors


_real_exit = os._exit


def _no_exit(code=0):
    raise SystemExit(f"os._exit({code}) was called")


def _exit(code=None):
    """``exit()`` and ``quit()`` as in a kernel (``python -S`` has neither)."""
    raise SystemExit(code)


def _limit_cells(seconds: float) -> None:
    """A limit for the answer cells' top-level code: ``seconds`` of CPU, 3 times that of wall."""
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    used = resource.getrusage(resource.RUSAGE_SELF).ru_utime
    if seconds > 0:
        signal.setitimer(signal.ITIMER_REAL, 3 * seconds)  # SIGALRM ends the process
        cpu = int(used + seconds) + 1
        resource.setrlimit(resource.RLIMIT_CPU, (cpu if hard < 0 else min(cpu, hard), hard))


def _end_cells_limit() -> None:
    signal.setitimer(signal.ITIMER_REAL, 0)
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    resource.setrlimit(resource.RLIMIT_CPU, (hard, hard))


class _NoShell:
    """``get_ipython()`` in the sandbox: magics and shell commands do nothing."""

    def __getattr__(self, name):
        return lambda *args, **kwargs: None


def main() -> None:
    """Read the job, run it, write the report to the result pipe."""
    os.write(2, b"mha-sandbox-runner: started\n")  # the grader knows the sandbox is up
    result_fd, lib, *site = sys.argv[1:]
    sys.path[:0] = [lib]
    sys.path.extend(site)
    import numpy as np

    raw = sys.stdin.buffer.read()
    size = struct.unpack(">Q", raw[:8])[0]
    job = json.loads(raw[8 : 8 + size])
    inputs = np.load(io.BytesIO(raw[8 + size :]), allow_pickle=False)
    inputs = {k: inputs[k] for k in inputs.files}
    result = os.fdopen(int(result_fd), "wb")
    import builtins

    builtins.exit = builtins.quit = _exit
    namespace = {"__name__": "__main__", "__builtins__": builtins, "get_ipython": _NoShell}
    prelude_errors = _exec_cells(job["prelude"], namespace, "setup import")
    os._exit = _no_exit  # the forked children use _real_exit
    _limit_cells(job.get("cells_time_limit", 0))
    cell_errors = _exec_cells(job["cells"], namespace, "answer cell")
    _end_cells_limit()
    report = {"prelude_errors": prelude_errors, "cell_errors": cell_errors, "exercises": []}
    arrays: dict = {}
    for i, exercise in enumerate(job["exercises"]):
        found, found_arrays = _fork_exercise(i, exercise, namespace, inputs, np)
        report["exercises"].append(found)
        arrays.update(found_arrays)
    result.write(_pack(report, arrays, np))
    result.close()


if __name__ == "__main__":
    main()
