"""nbgrader's commands in a forked, limited child process (part of :mod:`mha.grading.coursework`).

Grading one submission per process keeps a dead kernel or a broken gradebook
session to that submission; starting ``nbgrader`` afresh for each one would
cost its import time (seconds) per student. So this process imports nbgrader
once and forks a child per command. The child gets its own session, a memory
limit (address space) and a CPU-time limit, which the notebook's kernel
inherits; the parent kills the child and every process below it (the kernel
runs in a session of its own) when the wall-clock limit passes. Linux and macOS
(``os.fork``); the log of the command comes back as text.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Limits", "run_limited", "kernel_jail"]


@dataclass
class Limits:
    """Limits of one nbgrader command (one submission's autograde) and its kernel."""

    wall_s: float = 600.0  # the whole command
    cell_s: int = 300  # one cell (nbgrader's Execute.timeout)
    memory_bytes: int = 4 * 2**30  # address space of the child and, separately, of its kernel
    extra: list[str] = field(default_factory=list)  # more nbgrader options for autograde


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid``, from ``/proc`` (empty where there is no ``/proc``)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        kids = children.get(todo.pop(), [])
        found += kids
        todo += kids
    return found


def _kill_tree(pid: int) -> None:
    for p in [*_descendants(pid), pid]:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass


def bwrap_usable() -> bool:
    """Whether bubblewrap runs here (installed, and user namespaces allowed for this user)."""
    bwrap = shutil.which("bwrap")
    probe = [str(bwrap), "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "true"]
    return bool(bwrap) and subprocess.run(probe, capture_output=True).returncode == 0


def under_tmp() -> list[str]:
    """``--ro-bind`` arguments for this Python and the course when they live under ``/tmp``.

    A jail's private ``/tmp`` would hide them (a clone in ``/tmp``, a venv there), and
    the kernel could not start; bound again after the ``--tmpfs``, they show through.
    """
    roots = {sys.prefix, sys.base_prefix, str(Path(__file__).resolve().parents[2])}
    inside = sorted(r for r in roots if r == "/tmp" or r.startswith("/tmp/"))
    return [arg for r in inside for arg in ("--ro-bind", r, r)]


def kernel_jail(hide: list[Path], show: list[Path], scratch: Path) -> dict[str, str]:
    """Environment variables that make nbgrader start its ``python3`` kernel in bubblewrap.

    The kernel sees the file system read-only, with a private ``/tmp`` (also its
    ``HOME``), without the folders in ``hide`` (the course folder, the chapters),
    except the folders in ``show`` (the student's own submission, read-only, if they
    exist when the kernel starts). It
    dies with nbgrader. A kernel spec named ``python3`` is written under
    ``scratch`` and put first on ``JUPYTER_PATH``; the connection file lives in
    ``scratch/runtime``. Returns ``{}`` (and warns) where bubblewrap is not usable.
    """
    if not bwrap_usable():
        print("WARNING: bubblewrap (bwrap) is not usable here: the grading kernel runs with "
              "your rights and can write to your files", file=sys.stderr)  # fmt: skip
        return {}
    runtime, spec = scratch / "runtime", scratch / "share" / "kernels" / "python3"
    runtime.mkdir(parents=True, exist_ok=True)
    spec.mkdir(parents=True, exist_ok=True)
    argv = [str(shutil.which("bwrap")), "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
            "--tmpfs", "/tmp", *under_tmp(), "--setenv", "HOME", "/tmp",
            "--die-with-parent"]  # fmt: skip
    for path in hide:
        argv += ["--tmpfs", str(path)] if Path(path).is_dir() else []
    for path in (*show, runtime, "{connection_file}"):  # jupyter_client fills in the last
        argv += ["--ro-bind-try", str(path), str(path)]  # -try: made later, or not at all
    argv += [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    kernel = {"argv": argv, "display_name": "Python 3 (grading jail)", "language": "python"}
    (spec / "kernel.json").write_text(json.dumps(kernel, indent=1))
    path = os.environ.get("JUPYTER_PATH", "")
    return {"JUPYTER_PATH": os.pathsep.join(p for p in (str(scratch / "share"), path) if p),
            "JUPYTER_RUNTIME_DIR": str(runtime)}  # fmt: skip


def _preload() -> None:
    """Import nbgrader here, once, so that every forked child starts with it loaded."""
    import nbgrader.apps.nbgraderapp  # noqa: F401


def _become(user: str) -> dict[str, str]:
    """Switch this (forked, root) process to the Unix ``user``; the variables to set."""
    import pwd

    entry = pwd.getpwnam(user)
    os.setgroups([])
    os.setgid(entry.pw_gid)
    os.setuid(entry.pw_uid)
    return {"HOME": entry.pw_dir, "USER": user, "LOGNAME": user}


def _child(args: list[str], cwd: Path, limits: Limits, log_fd: int, env: dict) -> int:
    """Run ``nbgrader <args>`` in this (forked) process; its return code."""
    os.setsid()
    if user := env.pop("_MHA_USER", None):
        env = env | _become(user)
    cpu = int(limits.wall_s) + 1
    resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    sys.stdout = open(1, "w", buffering=1, closefd=False)
    sys.stderr = open(2, "w", buffering=1, closefd=False)
    os.chdir(cwd)
    bin_dir = str(Path(sys.executable).parent)
    os.environ["PATH"] = f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"
    os.environ.update(env)
    from jupyter_core.application import NoStart
    from nbgrader.apps.nbgraderapp import NbGraderApp

    try:
        app = NbGraderApp.instance()
        app.initialize(list(args))
        app.start()
        return 0
    except NoStart:  # what a subcommand raises when it has run
        return 0
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        traceback.print_exc()
        return 1


def _wait(pid: int, wall_s: float) -> int | None:
    """The child's return code, or None after killing it (and its kernel) at ``wall_s``."""
    deadline = time.monotonic() + wall_s
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            _kill_tree(pid)
            os.waitpid(pid, 0)
            return None
        time.sleep(0.05)


def run_limited(
    args: list[str], cwd: Path, limits: Limits, env: dict | None = None, user: str | None = None
) -> tuple[int | None, str]:
    """Run ``nbgrader <args>`` in ``cwd`` under ``limits``: ``(return code or None, log)``.

    ``env``: more environment variables for the command (see :func:`kernel_jail`).
    ``user``: run it as this Unix user instead (only as root; what a JupyterHub's
    students are, for tests of the exchange).
    The return code is None when the wall-clock limit killed the command, and
    negative (minus the signal) when a signal did, for example the CPU limit.
    """
    _preload()
    with tempfile.TemporaryFile(mode="w+", prefix="nbgrader-log-") as log:
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the child never returns from here
            code = 1
            try:
                extra = (env or {}) | ({"_MHA_USER": user} if user else {})
                code = _child(args, Path(cwd), limits, log.fileno(), extra)
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        code = _wait(pid, limits.wall_s)
        log.seek(0)
        return code, log.read()
