"""Ctrl-C (SIGINT) and SIGTERM end a test run at once, and every process its tests started is gone: a real pytest,
in a process of its own, interrupted while a test holds a `baton serve` tree (gateway, worker, embedded Valkey) and
the session's own Valkey (tests/process_guard.py is the guard)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests import process_guard

pytestmark = pytest.mark.slow  # pytest sessions of their own, each with a `baton serve`: `pytest -m slow`

ROOT = Path(__file__).resolve().parent.parent
TARGET = Path(__file__).with_name("interrupt_target.py")


def identity(pid: int) -> tuple[str, str] | None:
    """(start time, state) of a process, None when it is gone: a pid reused by another process is not the same."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    return fields[19], fields[0]


@pytest.mark.timeout(900)
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_ends_the_run_at_once_and_no_process_outlives_it(tmp_path: Path, signum: int) -> None:
    ready = tmp_path / "ready"
    env = {**os.environ, "BATON_INTERRUPT_READY": str(ready)}
    run = subprocess.Popen([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", str(TARGET)], cwd=ROOT,
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 300  # a loaded 2-core machine: pytest's start, `baton serve` starting its tree
        while not ready.exists():
            assert run.poll() is None, run.communicate()[0]
            assert time.monotonic() < deadline, "baton serve did not come up under the inner pytest"
            time.sleep(0.2)
        serve = int(ready.read_text())
        tree = process_guard.descendants(run.pid)
        assert serve in tree
        started = {pid: identity(pid) for pid in tree}
        assert len(started) >= 4, started  # the session's Valkey, baton serve, its Valkey, gateway, worker

        run.send_signal(signum)
        signalled = time.monotonic()
        output, _ = run.communicate(timeout=120)
        # At once, generously: the guard gives the tree 2 s, then pytest tears down and reports (a second or two on
        # a quiet machine; a run that went on would take the next test's ten minutes).
        assert time.monotonic() - signalled < 60, output
        assert run.returncode == pytest.ExitCode.INTERRUPTED, output
        assert "test_the_run_goes_on" not in output and "KeyboardInterrupt" in output, output

        time.sleep(0.5)
        left = {pid: identity(pid) for pid in tree}
        alive = [pid for pid, now in left.items() if now is not None and now[0] == started[pid][0] and now[1] != "Z"]
        assert not alive, [Path(f"/proc/{pid}/cmdline").read_bytes() for pid in alive]
    finally:
        if run.poll() is None:
            process_guard.stop_descendants(grace=0)
            run.kill()
            run.communicate()
