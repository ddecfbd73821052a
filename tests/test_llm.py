"""gateway/llm.py: litellm's real HTTP path from many worker threads at once."""

from __future__ import annotations

import threading
import time
from typing import Any

from gateway.llm import ThreadClients, completion, import_litellm
from tests.fake_openai import FakeOpenAI

IN_FLIGHT = 150  # more than the 100 connections of litellm's default shared httpx pool


def test_a_worker_keeps_more_than_a_hundred_model_calls_in_flight_at_once(fake_openai: FakeOpenAI) -> None:
    gate = threading.Event()
    for _ in range(IN_FLIGHT):
        fake_openai.reply("ok", gate=gate)  # every answer waits until all the calls have reached the model
    answers: list[Any] = []

    def call() -> None:
        answers.append(completion(model="openai/gpt-4o-mini", api_base=fake_openai.base_url, api_key="test",
                                  max_retries=0, timeout=60, messages=[{"role": "user", "content": "hi"}]))

    threads = [threading.Thread(target=call) for _ in range(IN_FLIGHT)]
    for thread in threads:
        thread.start()
    try:
        deadline = time.monotonic() + 30
        while len(fake_openai.requests) < IN_FLIGHT and time.monotonic() < deadline:
            time.sleep(0.05)
        at_once = len(fake_openai.requests)
    finally:
        gate.set()
        for thread in threads:
            thread.join(60)
    assert at_once == IN_FLIGHT, f"only {at_once} of {IN_FLIGHT} calls reached the model at once"
    assert [a.choices[0].message.content for a in answers] == ["ok"] * IN_FLIGHT


def test_each_thread_sends_on_a_client_of_its_own_and_keeps_it(fake_openai: FakeOpenAI) -> None:
    session = import_litellm().client_session
    assert isinstance(session, ThreadClients)
    clients: dict[str, list[int]] = {}

    def two_calls(name: str) -> None:
        for _ in range(2):
            completion(model="openai/gpt-4o-mini", api_base=fake_openai.base_url, api_key="test", max_retries=0,
                       messages=[{"role": "user", "content": "hi"}])
            clients.setdefault(name, []).append(id(session._local.client))

    threads = [threading.Thread(target=two_calls, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(fake_openai.requests) == 4
    assert clients["a"][0] == clients["a"][1] and clients["b"][0] == clients["b"][1], "a thread changed clients"
    assert clients["a"][0] != clients["b"][0], "two threads shared a client"
