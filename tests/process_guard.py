"""The session's guard over the processes its tests start (`baton serve` trees, Valkey servers, fake providers).

A test that is interrupted, or that forgot a process, must not leave it running: a newcomer's Ctrl-C once only
failed the running test (RQ's burst worker had taken over SIGINT) and left a `baton serve` tree behind. So the
session process

- becomes a child subreaper (Linux), so a process whose parent died (a Valkey in a session of its own, a
  worker whose `baton serve` was killed) is re-parented to it rather than to init, and stays findable;
- answers SIGINT and SIGTERM by stopping every descendant (SIGTERM, a short grace, then SIGKILL) and raising
  KeyboardInterrupt, which ends the run at once with pytest's own summary; a second signal kills what is left and
  exits on the spot;
- stops every descendant still running when the session ends, however it ends (and leaves at once after an
  interruption, without the interpreter's slow teardown).

tests/test_interrupt.py proves it on a real `baton serve` under a pytest of its own.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import time
from types import FrameType

_PR_SET_CHILD_SUBREAPER = 36
SIGNALS = (signal.SIGINT, signal.SIGTERM)
_interrupted = False


def become_subreaper() -> None:
    """Orphaned descendants come back to this process instead of init (a no-op where prctl is missing)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def _table() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, state) of every process /proc shows."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as file:
                stat = file.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # the name in parentheses may hold spaces
        table[int(entry)] = (int(fields[1]), fields[0])
    return table


def descendants(root: int | None = None) -> list[int]:
    """The living (not zombie) descendants of `root` (this process by default), parents before children."""
    root = os.getpid() if root is None else root
    children: dict[int, list[int]] = {}
    states = {}
    for pid, (parent, state) in _table().items():
        children.setdefault(parent, []).append(pid)
        states[pid] = state
    found: list[int] = []
    stack = [root]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return [pid for pid in found if states[pid] != "Z"]


def _signal_all(pids: list[int], signum: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signum)


def stop_descendants(grace: float = 2.0) -> list[int]:
    """SIGTERM every descendant, SIGKILL those still alive after `grace` seconds; the pids found first."""
    first = descendants()
    if not first:
        return []
    _signal_all(first, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while (left := descendants()) and time.monotonic() < deadline:
        time.sleep(0.05)
    for _ in range(20):  # a process forking as it is killed: look again until nothing is left
        if not (left := descendants()):
            break
        _signal_all(left, signal.SIGKILL)
        time.sleep(0.05)
    return first


def reap() -> None:
    """Collect the exit status of re-parented orphans (only at the end: Popen objects wait for their own)."""
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass


def _on_signal(signum: int, frame: FrameType | None) -> None:
    global _interrupted
    if _interrupted:  # the second Ctrl-C: no more waiting for anything
        stop_descendants(grace=0)
        os._exit(128 + signum)
    _interrupted = True
    stop_descendants()
    raise KeyboardInterrupt(f"stopped by {signal.Signals(signum).name}")


def exit_if_interrupted() -> None:
    """After pytest has reported an interrupted run, leave at once: tearing down the interpreter of a big session
    took tens of seconds on a loaded machine."""
    if _interrupted:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(2)  # pytest.ExitCode.INTERRUPTED


def install() -> None:
    """Answer SIGINT and SIGTERM as above (again after a test or a library took them over)."""
    for signum in SIGNALS:
        if signal.getsignal(signum) is not _on_signal:
            signal.signal(signum, _on_signal)
