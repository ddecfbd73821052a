"""10,000 idle visitor streams and 200 agent streams on ONE gateway process, driven from a client process of their
own (raw asyncio sockets), then a handover: every agent's stream gets it, no stream is aborted; the gateway's
memory per idle stream is measured."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable

import httpx
import pytest

from gateway.web.auth import create_agent
from tests.faults.audit import audit
from tests.faults.lab import HERE, PYTHON, WORKSPACE, Lab, rss_mb
from tests.faults.traffic import Ledger, Visitor

VISITORS = 10_000
AGENTS = 200


def _line(client: subprocess.Popen[str], word: str) -> list[str]:
    assert client.stdout is not None
    line = client.stdout.readline().split()
    assert line and line[0] == word, line
    return line[1:]


@pytest.mark.timeout(400)
def test_ten_thousand_idle_streams_on_one_gateway(lab: Lab, figures: Callable[..., None],
                                                  note: Callable[[str], None]) -> None:
    lab.valkey()
    config = lab.config(whatsapp=False)
    serve, base = lab.serve(config, gateways=1, wait=False)
    worker = lab.worker(config)
    lab.up(serve, base)
    lab.workers_ready([worker])
    [gateway] = lab.gateway_pids(serve)
    redis_client = lab.client()
    agents = lab.dir / "agents.txt"
    agents.write_text("\n".join(create_agent(redis_client, WORKSPACE, f"agent{n}", f"Agent {n}")
                                for n in range(AGENTS)))
    redis_client.close()
    client = subprocess.Popen([PYTHON, str(HERE / "streams_client.py"), "--port", base.rsplit(":", 1)[1],
                               "--visitors", str(VISITORS), "--agents", str(agents)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        made, session_s = _line(client, "SESSIONS")
        time.sleep(1)
        before = rss_mb(gateway)
        visitors, agent_streams, failed, open_s = _line(client, "OPEN")
        time.sleep(2)
        after = rss_mb(gateway)
        assert client.stdin is not None
        client.stdin.write("WATCH conversation.handover\n")
        client.stdin.flush()
        ledger = Ledger()
        with httpx.Client(timeout=15) as http:
            asked = time.time()
            sent = Visitor(http, base).say(ledger, "transfer to agent")
        seen, last_at = _line(client, "SEEN")
        client.stdin.write("REPORT\n")
        client.stdin.flush()
        assert client.stdout is not None
        streams = json.loads(client.stdout.readline())
        client.wait(30)
    finally:
        if client.poll() is None:
            client.kill()
            client.wait()
        for pipe in (client.stdin, client.stdout):
            if pipe is not None:
                pipe.close()
    report = audit(lab.redis_url, ledger)
    per_stream_kb = (after - before) * 1024 / (VISITORS + AGENTS)
    figures("5. 10,000 visitor + 200 agent streams on 1 gateway, then a handover", report, recovery="n/a",
            held=f"{visitors} visitor and {agent_streams} agent streams open ({failed} failed) in {open_s} s; the "
                 f"handover reached {seen}/{AGENTS} agents {float(last_at) - asked:.2f} s after the customer asked; "
                 f"{streams['aborted']} aborted; gateway RSS {before:.0f} → {after:.0f} MB, "
                 f"{per_stream_kb:.1f} KB per idle stream")
    note(f"[5. streams] {made} visitor sessions made in {session_s} s through the gateway; memory per idle stream "
         f"{per_stream_kb:.1f} KB (gateway RSS {before:.0f} MB before, {after:.0f} MB with "
         f"{VISITORS + AGENTS:,} streams open)")
    assert sent.acked
    assert (int(visitors), int(agent_streams), int(failed)) == (VISITORS, AGENTS, 0)
    assert int(seen) == AGENTS
    assert streams == {"aborted": 0, "open": VISITORS + AGENTS}
    report.check()
    assert serve.running() and "Traceback" not in serve.log(), serve.log()[-3000:]
