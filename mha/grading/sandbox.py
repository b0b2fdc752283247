"""A sandbox for students' code: bubblewrap, or a loud fallback to a limited subprocess.

Used by :mod:`mha.grading.regrade`. :func:`run_sandboxed` runs
:mod:`mha.grading.sandbox_runner` in a fresh process:

* with ``bwrap`` (Debian package ``bubblewrap``): new namespaces (no network, own
  PIDs, IPC and hostname), no capabilities, an empty environment, a private
  ``/tmp`` of limited size, and read-only views of the system's ``/usr``, the
  Python installation, and one job folder holding the runner and a copy of the
  library. The repository, ``chapters/``, the course folder (``source/``, the
  gradebook, other submissions) and the home folder are not there at all;
* without it (missing, or it fails to start): a warning on stderr and in every
  result, and a separate ``python -I -S`` process with the same resource limits.
  That process still sees the file system (the chapters' solutions included),
  so use it only where bubblewrap cannot run.

Both ways the process gets limits on CPU time, address space (memory), file
size and process count, a wall-clock deadline, and capped output. Input goes in
on stdin and results come back on a pipe, as bytes: the caller parses them as
data (:func:`numpy.load` with ``allow_pickle=False``), never as objects.

:func:`library_copy` makes the read-only copy of ``mha`` (without
``mha.grading``) in which chosen reference functions raise ``ReferenceUsedError``
instead of computing anything: their code is rewritten in the copied source, so
no original is left in the sandbox to alias, rename or re-``exec``.

What it does not protect against: a student who *writes* a correct answer with
another library (``torch.softmax`` is allowed); code outside the answer cells
(it is not run here at all); and, in the fallback only, reading files, signals
to the grading process and processes that outlive the run. Where the kernel
is unprivileged (JupyterHub), bubblewrap needs unprivileged user namespaces
(``sysctl kernel.unprivileged_userns_clone=1`` on Debian) or a setuid ``bwrap``.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import os
import resource
import shutil
import subprocess
import sys
import threading
import warnings
from dataclasses import dataclass
from functools import cache
from pathlib import Path

__all__ = [
    "Limits",
    "SandboxRun",
    "REFERENCE_ERROR",
    "bwrap_available",
    "library_copy",
    "run_sandboxed",
]

LIBRARY = Path(__file__).resolve().parents[1]  # the mha package
RUNNER = Path(__file__).with_name("sandbox_runner.py")
REFERENCE_ERROR = "ReferenceUsedError"
STARTED = "mha-sandbox-runner: started"  # the runner's first line on stderr
FALLBACK_WARNING = (
    "bubblewrap (bwrap) is not available{why}: students' code runs in a plain `python -I` "
    "process with resource limits, which can still READ the file system (chapters/, "
    "course/source). Install it: apt-get install -y bubblewrap"
)


@dataclass(frozen=True)
class Limits:
    """What one sandboxed process may use."""

    cpu_seconds: int = 60  # per process (every forked exercise gets its own)
    wall_seconds: float = 180.0  # the whole run
    cells_seconds: float = 10.0  # CPU for the answer cells' top-level code (wall: 3 times)
    call_seconds: float = 10.0  # all the calls of one exercise
    memory_bytes: int = 4 << 30  # address space per process (torch alone maps ~1 GiB)
    file_bytes: int = 16 << 20  # largest file it may write
    tmp_bytes: int = 64 << 20  # its private /tmp (bwrap only)
    output_bytes: int = 64 << 10  # stdout/stderr kept (the rest is read and dropped)
    result_bytes: int = 256 << 20  # results read back at most
    processes: int = 256  # on top of those the user already runs (a fork bomb stops there)


@dataclass
class SandboxRun:
    """What came back from one sandboxed process."""

    mode: str  # "bwrap" or "subprocess" (the fallback)
    returncode: int | None
    timed_out: bool
    result: bytes  # what the process wrote to its result pipe
    stdout: str = ""
    stderr: str = ""
    warning: str = ""  # set in the fallback
    started: bool = True  # False: bwrap failed to set up the sandbox (nothing of theirs ran)


# ---------------------------------------------------------------------------
# The library copy, with the exercise's references replaced
# ---------------------------------------------------------------------------

_ERROR_MODULE = f'''"""Raised in the grading sandbox by a reference an answer must not call."""


class {REFERENCE_ERROR}(RuntimeError):
    """An answer called the mha function it was asked to write."""
'''


def _locate(dotted: str) -> tuple[Path, list[str]]:
    """The source file (relative to the package's parent) and qualname of ``dotted``."""
    parts = dotted.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            obj = getattr(obj, name)
        obj = inspect.unwrap(obj)
        module = inspect.getmodule(obj)
        path = Path(inspect.getsourcefile(obj)).resolve().relative_to(LIBRARY.parent)
        if not module.__name__.startswith("mha."):
            break
        return path, obj.__qualname__.split(".")
    raise ValueError(f"reference {dotted!r} is not a function of the mha package")


def _poison_source(source: str, qualname: list[str], dotted: str) -> str:
    """``source`` with the body of function ``qualname`` replaced by a ``raise``."""
    tree, body = ast.parse(source), None
    scope = tree.body
    for name in qualname:
        node = next((n for n in scope if getattr(n, "name", None) == name), None)
        if node is None:
            raise ValueError(f"{'.'.join(qualname)} not found in its module's source")
        body, scope = node, node.body
    message = f"{dotted} is the reference of this exercise: the answer must not call it"
    body.body = ast.parse(
        f"from mha._reference_used import {REFERENCE_ERROR}\nraise {REFERENCE_ERROR}({message!r})"
    ).body
    body.decorator_list = [d for d in body.decorator_list if "cache" not in ast.unparse(d)]
    return ast.unparse(tree)


def library_copy(destination: Path, references: tuple[str, ...] = ()) -> Path:
    """Copy ``mha`` (without ``mha.grading``) into ``destination``; poison ``references``.

    Returns the folder to put on ``sys.path``. Files and folders are made read-only.
    """
    root = Path(destination)
    target = root / "mha"
    shutil.copytree(LIBRARY, target, ignore=shutil.ignore_patterns("__pycache__", "grading"))
    (target / "_reference_used.py").write_text(_ERROR_MODULE)
    for dotted in references:
        try:
            path, qualname = _locate(dotted)
            file = root / path
            file.write_text(_poison_source(file.read_text(), qualname, dotted))
        except (ImportError, AttributeError, ValueError, SyntaxError) as exc:
            message = f"reference {dotted} could not be replaced in the sandbox ({exc})"
            warnings.warn(message, RuntimeWarning, stacklevel=2)
            print(f"WARNING: {message}", file=sys.stderr)
    for folder, _, files in os.walk(root):
        for name in files:
            os.chmod(os.path.join(folder, name), 0o444)
        os.chmod(folder, 0o555)
    return root


# ---------------------------------------------------------------------------
# Running a process in the sandbox
# ---------------------------------------------------------------------------


def _system_binds() -> list[str]:
    """Read-only views of the system and of this Python (interpreter, site-packages)."""
    args = ["--ro-bind", "/usr", "/usr"]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64"):
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            args += ["--ro-bind", top, top]
    for etc in ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/alternatives"):
        args += ["--ro-bind-try", etc, etc]
    for prefix in sorted({sys.base_prefix, sys.prefix, *_site_packages()}):
        if not prefix.startswith("/usr/"):
            args += ["--ro-bind", prefix, prefix]
    for site in _site_packages():  # an installed (not editable) mha would hold the originals
        if os.path.isdir(os.path.join(site, "mha")):
            args += ["--tmpfs", os.path.join(site, "mha")]
    return args


def _site_packages() -> list[str]:
    import site

    return [p for p in site.getsitepackages() if os.path.isdir(p)]


def _bwrap_command(job_dir: Path, limits: Limits) -> list[str]:
    job = str(job_dir)
    cmd = [shutil.which("bwrap") or "bwrap", "--unshare-all", "--die-with-parent",
           "--new-session", "--clearenv", "--setenv", "HOME", "/tmp", "--setenv", "PATH",
           "/usr/bin:/bin", *_thread_env("--setenv"), "--size", str(limits.tmp_bytes),
           "--tmpfs", "/tmp", *_system_binds(), "--proc", "/proc", "--dev", "/dev",
           "--ro-bind", job, job, "--chdir", "/tmp"]  # fmt: skip
    # the private /tmp comes first, so a Python installed under /tmp stays visible
    if os.geteuid() == 0:
        cmd += ["--cap-drop", "ALL"]
    return [*cmd, "--"]


def _thread_env(flag: str | None = None) -> list[str]:
    names = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
    return [x for n in names for x in (flag, n, "1") if x is not None]


@cache
def bwrap_available() -> str:
    """``""`` when ``bwrap`` can start a sandbox here, else why not."""
    if not shutil.which("bwrap"):
        return "bwrap is not installed"
    cmd = [*_bwrap_command(Path("/tmp"), Limits()), sys.executable, "-I", "-S", "-c", "pass"]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bwrap failed to start ({exc})"
    if proc.returncode != 0:
        return f"bwrap failed to start ({proc.stderr.strip()[:200]})"
    return ""


def _limit(limits: Limits):
    """The resource limits, set in the child just before ``exec``."""
    users_processes = _process_count()

    values = {resource.RLIMIT_CPU: limits.cpu_seconds, resource.RLIMIT_AS: limits.memory_bytes,
              resource.RLIMIT_FSIZE: limits.file_bytes, resource.RLIMIT_CORE: 0,
              resource.RLIMIT_NPROC: users_processes + limits.processes}  # fmt: skip

    def apply() -> None:
        for which, value in values.items():
            resource.setrlimit(which, (value, value))

    return apply


def _process_count() -> int:
    """Processes of this user now (RLIMIT_NPROC counts them all)."""
    uid, count = os.getuid(), 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            count += os.stat(f"/proc/{pid}").st_uid == uid
        except OSError:
            pass
    return count


class _Drain(threading.Thread):
    """Read a pipe to its end, keeping at most ``cap`` bytes."""

    def __init__(self, fd: int, cap: int):
        super().__init__(daemon=True)
        self.fd, self.cap, self.chunks, self.size, self.dropped = fd, cap, [], 0, 0

    def run(self) -> None:
        with os.fdopen(self.fd, "rb", buffering=0) as pipe:
            while chunk := pipe.read(1 << 16):
                keep = chunk[: max(0, self.cap - self.size)]
                self.chunks.append(keep)
                self.size += len(keep)
                self.dropped += len(chunk) - len(keep)

    def data(self) -> bytes:
        return b"".join(self.chunks)


def _feed(pipe, data: bytes) -> None:
    try:
        pipe.write(data)
        pipe.close()
    except OSError:  # the process exited without reading everything
        pass


def run_sandboxed(
    job_dir: Path, args: list[str], stdin: bytes, limits: Limits = Limits()
) -> SandboxRun:
    """Run ``python -I -S job_dir/sandbox_runner.py FD *args`` sandboxed: a :class:`SandboxRun`.

    ``job_dir`` (read-only inside) must hold ``sandbox_runner.py``; the runner
    writes its results to file descriptor ``FD``, a pipe read here.
    """
    why = bwrap_available()
    mode = "subprocess" if why else "bwrap"
    warning = FALLBACK_WARNING.format(why=f" ({why})") if why else ""
    if warning:
        warnings.warn(warning, RuntimeWarning, stacklevel=2)
        print(f"WARNING: {warning}", file=sys.stderr)
    read_fd, write_fd = os.pipe()
    runner = str(Path(job_dir) / "sandbox_runner.py")
    python = [sys.executable, "-I", "-S", runner, str(write_fd), *args]
    prefix = [] if why else _bwrap_command(Path(job_dir), limits)
    env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp"} | dict.fromkeys(_thread_env()[1::3], "1")
    with subprocess.Popen(
        [*prefix, *python], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, pass_fds=(write_fd,), env=env, cwd=str(job_dir),
        preexec_fn=_limit(limits), start_new_session=True, close_fds=True,
    ) as proc:  # fmt: skip
        os.close(write_fd)
        pipes = (proc.stdout, proc.stderr)
        drains = [_Drain(os.dup(p.fileno()), limits.output_bytes) for p in pipes]
        proc.stdout.close()
        proc.stderr.close()
        result = _Drain(read_fd, limits.result_bytes)
        for t in (*drains, result):
            t.start()
        threading.Thread(target=_feed, args=(proc.stdin, stdin), daemon=True).start()
        timed_out = _wait(proc, limits.wall_seconds)
    for t in (*drains, result):
        t.join(5)
    out, err = (d.data().decode(errors="replace") for d in drains)
    run = SandboxRun(mode, proc.returncode, timed_out, result.data(), out, err, warning)
    run.started = bool(why) or err.startswith(STARTED)  # the runner's first words
    return run


def _wait(proc: subprocess.Popen, seconds: float) -> bool:
    """Wait for ``proc``; kill its whole session after ``seconds``. Whether it timed out."""
    try:
        proc.wait(seconds)
        return False
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, 9)
        except ProcessLookupError:
            pass
        proc.wait()
        return True
