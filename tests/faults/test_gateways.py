"""Two gateways on two ports, as behind a proxy without sticky sessions: an agent's and a visitor's event streams
open on one gateway follow what happens through the other (a visitor's message, the AI's handover, an agent's reply),
because every gateway reads the workspace's one event stream in Redis."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from gateway.web.auth import create_agent
from tests.faults.lab import WORKSPACE, Lab, wait_for
from tests.faults.traffic import Ledger, Visitor


@contextmanager
def stream(url: str, headers: dict[str, str]) -> Iterator[list[dict[str, Any]]]:
    """The data of each event the stream at `url` sends, as they come, for the length of the block."""
    events: list[dict[str, Any]] = []
    opened, stop = threading.Event(), threading.Event()

    def read() -> None:
        with httpx.Client(timeout=httpx.Timeout(10, read=None)) as http, \
                http.stream("GET", url, headers=headers) as response:
            assert response.status_code == 200, response.read()
            opened.set()
            for line in response.iter_lines():
                if line.startswith("data: "):
                    events.append(json.loads(line[6:]))
                if stop.is_set():
                    return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    assert opened.wait(15), f"{url} did not open"
    try:
        yield events
    finally:
        stop.set()


def test_streams_on_one_gateway_follow_what_happens_through_another(lab: Lab) -> None:
    lab.valkey()
    config = lab.config(whatsapp=False)
    serve_a, first = lab.serve(config, name="serve-a", wait=False)
    serve_b, second = lab.serve(config, name="serve-b", wait=False)
    worker = lab.worker(config)
    lab.up(serve_a, first)
    lab.up(serve_b, second)
    lab.workers_ready([worker])
    client = lab.client()
    agent = {"Authorization": f"Bearer {create_agent(client, WORKSPACE, 'alex', 'Alex')}"}
    client.close()
    with httpx.Client(timeout=15) as http:
        visitor = Visitor(http, second)  # the session is made on B; its stream is read on A
        with stream(f"{first}/api/events", agent) as inbox, \
                stream(f"{first}/webchat/chat/events", visitor.headers) as chat:
            visitor.say(Ledger(), "I want to talk to a human")  # through B
            handover = wait_for(lambda: next((e for e in inbox if e["type"] == "conversation.handover"), None),
                                "the handover on A's inbox stream", 20)
            conversation = handover["conversation"]
            wait_for(lambda: [e for e in chat if e["author"] == "ai"], "the AI's handover notice on A's widget stream",
                     20)
            taken = http.post(f"{second}/api/conversations/{conversation}/assign", json={"assignee": "me"},
                              headers=agent)
            assert taken.status_code == 200, taken.text
            replied = http.post(f"{second}/api/conversations/{conversation}/messages", json={"text": "Alex here."},
                                headers=agent)
            assert replied.status_code == 201, replied.text
            wait_for(lambda: [e for e in chat if e.get("text") == "Alex here."], "the agent's reply on A's widget "
                     "stream", 20)
            wait_for(lambda: [e for e in inbox if e["type"] == "conversation.assigned"], "the assignment on A", 20)
    texts = [(e["author"], e.get("text")) for e in chat]
    assert texts[0] == ("customer", "I want to talk to a human") and texts[-1] == ("agent", "Alex here."), texts
    assert len(texts) == len(set(e["id"] for e in chat)), f"an event twice on the widget's stream: {texts}"
