"""gateway/work/delivery.py on its own: draining a conversation's outbox through an inline connector that collects what
it is given and answers as each test scripts it (sent, failed, retry, maybe sent, a connector bug), in order, one
sender at a time, never twice."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from gateway import hookimpl, keys
from gateway.connector import Outbound, SendResult, WebhookConnector, WebhookRequest
from gateway.deployment import Deployment
from gateway.errors import SendFailed
from gateway.handover.store import CustomerMessage
from gateway.plugin_host import plugin_manager
from gateway.work.delivery import RETRY_MS, drain
from gateway.work.dispatch import GRACE_MS
from tests.conftest import workspace_of

SENDER = "whatsapp:+15550100"
Answer = SendResult | Exception | Callable[[], Any]


class ScriptedConnector(WebhookConnector):
    """Collects every message it is asked to send and answers with the next scripted answer (default: sent)."""

    type = "scripted"
    sent: list[Outbound] = []
    answers: list[Answer] = []

    def verify(self, request: WebhookRequest) -> None:
        """Nothing comes in through this channel in these tests."""

    def parse(self, request: WebhookRequest) -> list[Any]:
        return []

    def send(self, message: Outbound) -> SendResult:
        ScriptedConnector.sent.append(message)
        answer = ScriptedConnector.answers.pop(0) if ScriptedConnector.answers else None
        if isinstance(answer, Exception):
            raise answer
        if callable(answer):
            answer()
        if isinstance(answer, SendResult):
            return answer
        return SendResult(provider_id=f"SM{len(ScriptedConnector.sent)}", status="queued")


class ScriptedPlugin:
    @hookimpl
    def register_connectors(self, register: Any) -> None:
        register(ScriptedConnector)


@pytest.fixture
def deployment(make_deployment: Callable[..., Deployment]) -> Iterator[Deployment]:
    """This module's deployment: one channel, of the scripted type, registered for the test."""
    plugin = ScriptedPlugin()
    plugin_manager().register(plugin)
    ScriptedConnector.sent, ScriptedConnector.answers = [], []
    try:
        yield make_deployment(channels=[{"name": "scripted", "type": "scripted"}])
    finally:
        plugin_manager().unregister(plugin)


class Chat:
    """A conversation on the scripted channel, answered by an agent."""

    def __init__(self, deployment: Deployment) -> None:
        self.deployment = deployment
        self.store = deployment.store
        self.ws = workspace_of(deployment)
        message = CustomerMessage(channel="scripted", sender=SENDER, provider_id="", text="Hello", customer="Maria",
                                  delivers=True, published=True, timeout_ms=120_000)
        self.id = self.store.inbound(self.ws, message).conversation
        self.store.assign(self.ws, self.id, "agent:alex", "agent:alex", reason="took it")

    def say(self, *texts: str, **extra: Any) -> list[str]:
        return [self.store.post(self.ws, self.id, "agent", text, agent_id="alex", **extra) for text in texts]

    def drain(self, worker: str = "w1") -> int:
        return drain(self.deployment, self.ws, self.id, worker)

    def delivery(self) -> dict[str, str]:
        key = keys.key(keys.DELIVERY, workspace_id=self.ws, conversation_id=self.id)
        states: Any = self.deployment.redis.hgetall(key)
        return {mid: state for mid, state in states.items() if ":" not in mid}

    def outbox(self) -> list[str]:
        key = keys.key(keys.OUTBOX, workspace_id=self.ws, conversation_id=self.id)
        found: Any = self.deployment.redis.lrange(key, 0, -1)
        return list(found)

    def notes(self, kind: str) -> list[str]:
        return [m["text"] for m in self.store.messages(self.ws, self.id) if m["kind"] == kind]


@pytest.fixture
def chat(deployment: Deployment) -> Chat:
    return Chat(deployment)


def sent_texts() -> list[str]:
    return [m.text for m in ScriptedConnector.sent]


def test_drain_sends_every_queued_message_in_order(chat: Chat) -> None:
    form = {"type": "contact_form", "fields": [{"name": "email", "type": "email"}]}
    mids = chat.say("One", "Two") + [chat.store.post(chat.ws, chat.id, "system", "Three", kind="notice", rich=form)]
    assert chat.drain() == 3
    assert sent_texts() == ["One", "Two", "Three"]
    first = ScriptedConnector.sent[0]
    assert (first.channel, first.recipient, first.message_id, first.conversation_id, first.rich) == (
        "scripted", SENDER, mids[0], chat.id, None)
    assert ScriptedConnector.sent[2].rich == form
    assert chat.delivery() == dict.fromkeys(mids, "queued")
    assert chat.outbox() == []
    sent = keys.key(keys.SENT, workspace_id=chat.ws, channel="scripted", provider_id="SM2")
    assert chat.deployment.redis.get(sent) == f"{chat.id}|{mids[1]}"
    assert not chat.deployment.redis.exists(keys.key(keys.OUTBOX_LOCK, workspace_id=chat.ws, conversation_id=chat.id))
    assert chat.drain() == 0 and len(ScriptedConnector.sent) == 3


def test_drain_records_a_failure_and_goes_on(chat: Chat) -> None:
    ScriptedConnector.answers = [SendFailed("invalid number", retryable=False, code=21211)]
    first, second = chat.say("One", "Two")
    assert chat.drain() == 1
    assert chat.delivery() == {first: "failed", second: "queued"}
    assert chat.notes("delivery_failed") == ["Delivery failed: invalid number"]
    entries: Any = chat.deployment.redis.xrange(keys.key(keys.EVENTS, workspace_id=chat.ws))
    [failed] = [e for e in (json.loads(fields["data"]) for _, fields in entries) if e.get("status") == "failed"]
    assert (failed["type"], failed["message"], failed["error_code"]) == ("message.status", first, "21211")


def test_drain_retries_a_message_that_was_surely_not_sent_before_any_later_one(chat: Chat) -> None:
    ScriptedConnector.answers = [SendFailed("503 from the provider", retryable=True)]
    first, second = chat.say("One", "Two")
    before = chat.store.now_ms()
    assert chat.drain() == 0
    assert sent_texts() == ["One"]  # "Two" waits behind it: the order holds
    assert chat.delivery() == {first: "pending", second: "pending"}
    due = chat.deployment.redis.zscore(keys.key(keys.OUTBOXES, workspace_id=chat.ws), chat.id)
    assert due is not None and before + RETRY_MS[0] - GRACE_MS <= due <= chat.store.now_ms() + RETRY_MS[0] - GRACE_MS
    assert chat.drain() == 2  # woken again (by the sweep, once due)
    assert sent_texts() == ["One", "One", "Two"]


def test_drain_fails_a_message_after_the_last_retry(chat: Chat) -> None:
    ScriptedConnector.answers = [SendFailed("channel down", retryable=True) for _ in range(len(RETRY_MS) + 1)]
    [mid] = chat.say("One")
    for _ in RETRY_MS:
        assert chat.drain() == 0 and chat.delivery() == {mid: "pending"}
    assert chat.drain() == 0
    assert chat.delivery() == {mid: "failed"} and chat.outbox() == []
    assert len(ScriptedConnector.sent) == len(RETRY_MS) + 1
    assert chat.notes("delivery_failed") == ["Delivery failed: channel down"]


@pytest.mark.parametrize(("answer", "reason"), [
    (SendFailed("read timeout", retryable=False, maybe_sent=True), "Delivery unknown: read timeout"),
    (RuntimeError("a bug in the connector"), "Delivery unknown: the connector failed: RuntimeError"),
])
def test_drain_never_sends_twice_what_may_have_been_sent(chat: Chat, answer: Exception, reason: str) -> None:
    ScriptedConnector.answers = [answer]
    first, second = chat.say("One", "Two")
    assert chat.drain() == 1
    assert chat.delivery() == {first: "unknown", second: "queued"}
    [note] = chat.notes("delivery_unknown")
    assert note.startswith(f"{reason}. This channel cannot be asked whether it has a message")  # no lookup_send
    assert chat.drain() == 0
    assert sent_texts() == ["One", "Two"]


def test_drain_after_a_sender_died_mid_send_does_not_send_its_message_again(chat: Chat) -> None:
    first, second = chat.say("One", "Two")
    chat.store.outbox_next(chat.ws, chat.id, "dead-sender")
    # its lock lapsed
    chat.deployment.redis.delete(keys.key(keys.OUTBOX_LOCK, workspace_id=chat.ws, conversation_id=chat.id))
    assert chat.drain() == 1
    assert sent_texts() == ["Two"]
    assert chat.delivery() == {first: "unknown", second: "queued"}


def test_drain_sends_what_was_queued_while_it_was_sending(chat: Chat) -> None:
    ScriptedConnector.answers = [lambda: chat.say("Three")]
    chat.say("One", "Two")
    assert chat.drain() == 3
    assert sent_texts() == ["One", "Two", "Three"]


def test_a_second_drain_while_one_holds_the_outbox_sends_nothing(chat: Chat) -> None:
    second_drain: list[int] = []

    def meanwhile() -> None:
        chat.say("Three")
        second_drain.append(chat.drain(worker="w2"))

    ScriptedConnector.answers = [meanwhile]
    chat.say("One", "Two")
    assert chat.drain(worker="w1") == 3
    assert second_drain == [0]
    assert sent_texts() == ["One", "Two", "Three"]


def test_drain_of_an_unknown_conversation_sends_nothing(deployment: Deployment) -> None:
    assert drain(deployment, workspace_of(deployment), "404") == 0


def test_drain_on_a_disabled_channel_retries_later(chat: Chat) -> None:
    chat.deployment.channels["scripted"].disabled = "missing credentials"
    [mid] = chat.say("One")
    assert chat.drain() == 0
    assert ScriptedConnector.sent == [] and chat.delivery() == {mid: "pending"}
    chat.deployment.channels["scripted"].disabled = None
    assert chat.drain() == 1 and sent_texts() == ["One"]
