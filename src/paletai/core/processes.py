"""Starting and stopping the child processes the project runs (database, app servers)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

# Run before the real program, in the child: ask Linux for SIGTERM when the parent dies (so it
# can flush), leave if the parent already died, then become the program (same pid). Done this way
# rather than with Popen(preexec_fn=...): that also runs the parent's at-fork hooks in the child,
# and PyMongo's async client hook fails there, with a traceback, when no event loop runs.
_DIE_WITH_PARENT = (
    "import ctypes, os, signal, sys\n"
    "ctypes.CDLL('libc.so.6', use_errno=True).prctl(1, signal.SIGTERM)\n"
    "if os.getppid() != int(sys.argv[1]):\n"
    "    sys.exit(1)\n"
    "os.execvp(sys.argv[2], sys.argv[2:])\n"
)


def _with_die_with_parent(argv: Sequence[str]) -> list[str]:
    if not sys.platform.startswith("linux"):
        return list(argv)
    # -I -S: the launcher needs only the standard library; the program gets the env untouched.
    return [sys.executable, "-I", "-S", "-c", _DIE_WITH_PARENT, str(os.getpid()), *argv]


def start_process(
    argv: Sequence[str],
    *,
    log_path: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    umask: int = -1,
) -> subprocess.Popen[bytes]:
    """Start `argv` in its own session, output appended to `log_path` (created 0600), told to
    stop (SIGTERM) when this process dies, even by kill -9 (Linux, PR_SET_PDEATHSIG).

    Its own session: a terminal's Ctrl-C reaches the parent only, which stops the children in
    order (`stop_process_group`). The death signal follows the *thread* that started the child:
    start long-lived children from the main thread or from a thread that lives as long as they do.
    `umask` (e.g. 0o077) applies to the files the child creates.
    """
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "ab") as log:
        return subprocess.Popen(  # noqa: S603 - argv from our code, no shell
            _with_die_with_parent(argv),
            cwd=cwd,
            env=None if env is None else dict(env),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            umask=umask,
        )


def stop_process_group(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """SIGTERM the process's group, wait; SIGKILL it if it does not stop in time.

    For children started with `start_process` (or `start_new_session=True`).
    """
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=timeout)
