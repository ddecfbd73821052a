"""Run only by tests/test_interrupt.py, in a pytest of its own (the name keeps it out of the suite's collection): a
test that does a burst of work (RQ's worker once kept SIGINT after it), starts `baton serve` and waits to be
interrupted once its tree (Valkey, a gateway, a worker) is up, then a test that would keep the run going if the
signal only failed the running test."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from gateway.deployment import Deployment
from tests import process_guard
from tests.conftest import KNOWLEDGE, free_port, run_jobs


@pytest.mark.timeout(900)
def test_serve_until_interrupted(tmp_path: Path, make_deployment: Callable[..., Deployment]) -> None:
    run_jobs(make_deployment())
    config = tmp_path / "baton.yaml"
    config.write_text(yaml.safe_dump({
        "gateway": {"processes": 1}, "worker": {"processes": 1},
        "workspaces": [{"id": "shop", "channels": [{"name": "chat", "type": "webchat"}],
                        "ai_agent": {"model": "baton/knowledge", "knowledge": {"entries": KNOWLEDGE}}}]}))
    with open(tmp_path / "serve.log", "w") as log:
        serve = subprocess.Popen([sys.executable, "-m", "gateway.cli", "serve", "--config", str(config), "--port",
                                  str(free_port())], cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
        while len(process_guard.descendants(serve.pid)) < 3:  # its Valkey, a gateway and a worker
            assert serve.poll() is None, (tmp_path / "serve.log").read_text()
            time.sleep(0.1)
        Path(os.environ["BATON_INTERRUPT_READY"]).write_text(str(serve.pid))
        time.sleep(900)


@pytest.mark.timeout(900)
def test_the_run_goes_on() -> None:
    time.sleep(900)
