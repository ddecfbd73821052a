"""A handover end to end through the installed plugin, as an operator runs it: `baton serve` (which finds the
plugin by its entry point) with a Telegram channel pointed at the fake Bot API, the webhook set by
`baton-telegram set-webhook`, a customer's updates delivered as Telegram delivers them. The customer asks for a
person, an agent created with `baton agent create` replies from the inbox API, and the reply reaches the Bot API
as a sendMessage to the customer's chat."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.fake_bot_api import BOT_TOKEN, FakeBotAPI

SECRET = "handover-secret-0123456789abcdef"
CHAT_ID = 555000222
QUESTION, ANSWER = "How long does shipping take?", "Delivery takes 2-4 business days."
BIN = Path(sys.executable).parent


def command(name: str) -> str:
    found = shutil.which(name, path=str(BIN)) or shutil.which(name)
    if found is None:
        pytest.skip(f"`{name}` is not installed (pip install baton-gateway ./examples/baton-telegram)")
    return found


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(what: str, check: Callable[[], Any], seconds: float) -> Any:
    """`check()`'s first true answer within `seconds` (generous: a loaded CI machine starts workers slowly)."""
    deadline = time.monotonic() + seconds
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"no {what} within {seconds} s"
        time.sleep(0.2)


@pytest.fixture
def telegram() -> Iterator[FakeBotAPI]:
    with FakeBotAPI() as fake:
        yield fake


@pytest.fixture
def served(tmp_path: Path, telegram: FakeBotAPI) -> Iterator[tuple[str, Path, dict[str, str]]]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    config = tmp_path / "baton.yaml"
    config.write_text(yaml.safe_dump({"public_url": url, "workspaces": [{
        "id": "shop",
        "channels": [{"name": "telegram", "type": "telegram", "bot_token": "${TELEGRAM_BOT_TOKEN}",
                      "secret_token": "${TELEGRAM_WEBHOOK_SECRET}", "api_base_url": telegram.base_url,
                      "send_timeout": 5}],
        "ai_agent": {"model": "baton/knowledge", "knowledge": {"entries": [{"q": QUESTION, "a": ANSWER}]}},
    }]}))
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"} | {
        "TELEGRAM_BOT_TOKEN": BOT_TOKEN, "TELEGRAM_WEBHOOK_SECRET": SECRET, "TELEGRAM_API_BASE_URL": telegram.base_url}
    log = tmp_path / "serve.log"
    with open(log, "w") as output:
        process = subprocess.Popen([command("baton"), "serve", "--config", str(config), "--port", str(port)],
                                   cwd=tmp_path, env=env, stdout=output, stderr=subprocess.STDOUT)
    try:
        def ready() -> bool:
            assert process.poll() is None, log.read_text()
            try:
                return httpx.get(f"{url}/readyz", timeout=5).status_code == 200
            except httpx.TransportError:
                return False

        wait_for("ready baton serve (a worker up)", ready, 180)
        yield url, config, env
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.mark.timeout(900)  # a real baton serve: its workers import litellm first, minutes on a loaded machine
def test_a_telegram_customer_asks_for_a_person_and_an_agent_replies(
        served: tuple[str, Path, dict[str, str]], telegram: FakeBotAPI) -> None:
    url, config, env = served
    webhook = f"{url}/webhooks/telegram"
    set_up = subprocess.run([command("baton-telegram"), "set-webhook", "--url", webhook], env=env, text=True,
                            capture_output=True, timeout=60)
    assert set_up.returncode == 0, set_up.stderr
    assert telegram.webhook["url"] == webhook and telegram.webhook["secret_token"] == SECRET

    def sent_texts() -> list[str]:
        return [m.text for m in telegram.sent if m.chat_id == str(CHAT_ID)]

    # The AI answers first, from the knowledge base; a retried delivery of the same update changes nothing.
    question = telegram.update(CHAT_ID, QUESTION)
    assert telegram.deliver(question).status_code == 200
    assert telegram.deliver(question).status_code == 200
    wait_for("AI answer", lambda: ANSWER in sent_texts(), 60)

    # The customer asks for a person: the AI steps aside, and the customer hears so.
    answered = len(sent_texts())
    assert telegram.deliver(telegram.update(CHAT_ID, "I want to talk to a person")).status_code == 200
    wait_for("word that a person is coming", lambda: len(sent_texts()) > answered, 60)

    created = subprocess.run([command("baton"), "agent", "create", "alex", "--name", "Alex", "--config", str(config)],
                             cwd=config.parent, env=env, text=True, capture_output=True, timeout=120)
    assert created.returncode == 0, created.stderr
    agent = {"Authorization": f"Bearer {created.stdout.strip().splitlines()[-1]}"}

    def waiting() -> list[dict[str, Any]]:
        listed = httpx.get(f"{url}/api/conversations?view=waiting", headers=agent, timeout=10)
        assert listed.status_code == 200, listed.text
        return list(listed.json()["conversations"])

    [conversation] = wait_for("conversation waiting for a person", waiting, 60)
    assert sum(1 for m in telegram.sent if m.text == ANSWER) == 1  # the retried update was answered once

    reply = "Hi Maria, Alex here. Your parcel left this morning."
    posted = httpx.post(f"{url}/api/conversations/{conversation['id']}/messages", headers=agent, timeout=10,
                        json={"text": reply, "client_id": "reply-1"})
    assert posted.status_code == 201, posted.text
    wait_for("agent's reply at the Bot API", lambda: reply in sent_texts(), 60)
    [delivered] = [m for m in telegram.sent if m.text == reply]
    assert (delivered.method, delivered.chat_id) == ("sendMessage", str(CHAT_ID))

    # The inbox shows the conversation with the customer's name and the whole exchange.
    detail = httpx.get(f"{url}/api/conversations/{conversation['id']}", headers=agent, timeout=10).json()
    texts = [m["text"] for m in detail["conversation"]["messages"]]
    assert QUESTION in texts and "I want to talk to a person" in texts and reply in texts
