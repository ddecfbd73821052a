"""The races of the handover engine, with real concurrency against a real Redis: a takeover while the AI's
reply is in flight, many agents claiming at once, an assignment at the fallback's deadline, and duplicate
deliveries of the same customer message (Twilio retries, webchat retries) during a handover."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient
from twilio.request_validator import RequestValidator

from gateway.deployment import Deployment
from gateway.handover.fallback import fire_due
from gateway.handover.lifecycle import HANDOVER_NOTICE
from gateway.web.app import create_app
from gateway.work import worker
from gateway.work.turn import take_turn
from tests.conftest import (
    LiveServer,
    Visitor,
    agent_token,
    chat_channel,
    hosted_model,
    inbox_events,
    run_jobs,
    workspace_of,
)
from tests.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio

REPLY = "We are open from nine to five."


def wait_for(predicate: Callable[[], Any], what: str, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)
    return value


def conversation(client: Any, headers: dict[str, str], cid: str) -> dict[str, Any]:
    response = client.get(f"/api/conversations/{cid}", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["conversation"]  # type: ignore[no-any-return]


def index_of(messages: list[dict[str, Any]], kind: str) -> int:
    [index] = [i for i, m in enumerate(messages) if m["kind"] == kind]
    return index


class QueuedTurn:
    """The AI turn a customer message woke, taken off the turn list and run in a thread as a worker runs it,
    so the test can act meanwhile."""

    def __init__(self, deployment: Deployment) -> None:
        worker.prepare(deployment)
        workspace = workspace_of(deployment)
        conversation = deployment.redis.lpop(f"baton:{workspace}:turns")
        assert conversation, "no AI turn was queued"
        self.result: str | BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(take_turn, deployment, workspace, conversation),
                                       daemon=True)
        self.thread.start()

    def _run(self, function: Callable[..., str], *args: str) -> None:
        try:
            self.result = function(*args)
        except BaseException as exc:  # noqa: BLE001 - reported by finish()
            self.result = exc

    def finish(self) -> str | BaseException | None:
        self.thread.join(timeout=30)
        assert not self.thread.is_alive(), "the AI turn did not finish"
        return self.result


# --- a takeover while the AI's reply is in flight --------------------------------------------------

@pytest.fixture
def held(make_deployment: Callable[..., Deployment], fake_openai: Any) -> Iterator[tuple[Deployment, TestClient,
                                                                                         threading.Event]]:
    """A hosted model whose first answer is held back until the test sets the gate."""
    deployment = make_deployment(ai_agent=hosted_model(fake_openai))
    gate = threading.Event()
    fake_openai.reply(REPLY, gate=gate)
    with TestClient(create_app(deployment)) as client:
        try:
            yield deployment, client, gate
        finally:
            gate.set()


def reply_in_flight(deployment: Deployment, client: TestClient,
                    fake_openai: Any) -> tuple[dict[str, str], Visitor, str, QueuedTurn]:
    """An agent, and a visitor whose question the model is answering right now (held at the gate)."""
    alex = agent_token(deployment, "alex")
    visitor = Visitor(client, chat_channel(deployment))
    cid = visitor.say("When are you open?")["conversation"]
    turn = QueuedTurn(deployment)
    wait_for(lambda: fake_openai.requests, "the model call")
    return alex, visitor, cid, turn


def test_an_agent_who_takes_over_while_the_ai_reply_is_in_flight_gets_no_ai_message_after_it(
        held: tuple[Deployment, TestClient, threading.Event], fake_openai: Any) -> None:
    deployment, client, gate = held
    alex, visitor, cid, turn = reply_in_flight(deployment, client, fake_openai)
    taken = client.post(f"/api/conversations/{cid}/assign", json={"assignee": "me"}, headers=alex)
    assert taken.status_code == 200, taken.text
    gate.set()
    assert turn.finish() == "suppressed (suppressed)"
    run_jobs(deployment)
    assert visitor.texts("ai") == []
    assert visitor.texts("system") == ["Alex joined the conversation."]
    detail = conversation(client, alex, cid)
    assert detail["owner"] == "agent:alex"
    messages = detail["messages"]
    assert index_of(messages, "assignment") < index_of(messages, "suppressed")
    assert not [m for m in messages if m["author"] == "ai"]
    [suppressed] = [m for m in messages if m["kind"] == "suppressed"]
    assert suppressed["text"] == REPLY and suppressed["visibility"] == "internal"
    assert suppressed["data"]["owner"] == "agent:alex"
    [event] = [e for e in inbox_events(client, alex, "message.created") if e["kind"] == "suppressed"]
    assert event["conversation"] == cid and event["visibility"] == "internal"


def test_a_reply_made_obsolete_by_a_takeover_stays_dropped_when_the_ai_is_handed_the_chat_back_meanwhile(
        held: tuple[Deployment, TestClient, threading.Event], fake_openai: Any) -> None:
    deployment, client, gate = held
    alex, visitor, cid, turn = reply_in_flight(deployment, client, fake_openai)
    for assignee in ("me", "ai"):  # the AI owns it again, but not the ownership the reply was made under
        response = client.post(f"/api/conversations/{cid}/assign", json={"assignee": assignee}, headers=alex)
        assert response.status_code == 200, response.text
    gate.set()
    assert turn.finish() == "suppressed (stale_turn)"
    assert REPLY not in visitor.texts("ai")
    [suppressed] = [m for m in conversation(client, alex, cid)["messages"] if m["kind"] == "suppressed"]
    assert suppressed["text"] == REPLY and suppressed["data"]["owner"] == "ai"


def test_an_agent_who_replies_while_the_ai_reply_is_in_flight_takes_over_and_the_ai_reply_is_dropped(
        held: tuple[Deployment, TestClient, threading.Event], fake_openai: Any) -> None:
    deployment, client, gate = held
    alex, visitor, cid, turn = reply_in_flight(deployment, client, fake_openai)
    posted = client.post(f"/api/conversations/{cid}/messages", json={"text": "Alex here, 9 to 5!"}, headers=alex)
    assert posted.status_code == 201, posted.text
    gate.set()
    assert turn.finish() == "suppressed (suppressed)"
    run_jobs(deployment)
    assert visitor.texts("ai") == []
    assert visitor.texts("agent") == ["Alex here, 9 to 5!"]
    detail = conversation(client, alex, cid)
    assert detail["owner"] == "agent:alex"
    [assignment] = [m for m in detail["messages"] if m["kind"] == "assignment"]
    assert assignment["data"] == {"actor": "agent:alex", "previous": "ai", "owner": "agent:alex",
                                  "reason": "replied"}
    [suppressed] = [m for m in detail["messages"] if m["kind"] == "suppressed"]
    assert suppressed["text"] == REPLY and suppressed["data"]["owner"] == "agent:alex"


def test_an_agent_who_picks_up_while_the_ai_is_handing_over_gets_no_handover_after_it(
        held: tuple[Deployment, TestClient, threading.Event], fake_openai: Any,
        notifications: list[dict[str, Any]]) -> None:
    deployment, client, gate = held
    alex = agent_token(deployment, "alex")
    visitor = Visitor(client, chat_channel(deployment))
    cid = visitor.say("transfer to agent")["conversation"]
    turn = QueuedTurn(deployment)
    wait_for(lambda: fake_openai.requests, "the summary call")  # the hosted model writes the summary
    taken = client.post(f"/api/conversations/{cid}/assign", json={"assignee": "me"}, headers=alex)
    assert taken.status_code == 200, taken.text
    gate.set()
    assert turn.finish() == "no handover (not_owner)"
    run_jobs(deployment)
    assert HANDOVER_NOTICE not in visitor.texts()
    assert conversation(client, alex, cid)["owner"] == "agent:alex"
    assert inbox_events(client, alex, "conversation.handover") == []
    assert [n for n in notifications if n["workspace"] == workspace_of(deployment)] == []


# --- many agents claim at once ----------------------------------------------------------------------

def concurrently(count: int, action: Callable[[int], Any]) -> list[Any]:
    """Run action(0..count-1) in threads released together; return the results in index order."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def run(index: int) -> None:
        barrier.wait(timeout=10)
        try:
            results[index] = action(index)
        except BaseException as exc:  # noqa: BLE001 - reported below
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(t.is_alive() for t in threads), "a thread did not finish"
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, errors
    return results


@pytest.mark.parametrize("start", ["waiting", "ai"])
def test_fifty_agents_claiming_at_once_give_one_winner_and_49_conflicts_naming_it(
        deployment: Deployment, start: str) -> None:
    tokens = [agent_token(deployment, f"agent{i:02d}") for i in range(50)]
    limits = httpx.Limits(max_connections=50)  # one connection per agent, all open at once
    with LiveServer(deployment) as server, httpx.Client(base_url=server.url, timeout=30, limits=limits) as http:
        visitor = Visitor(http, chat_channel(deployment))  # type: ignore[arg-type]
        cid = visitor.say("transfer to agent" if start == "waiting" else "When are you open?")["conversation"]
        run_jobs(deployment)
        assert conversation(http, tokens[0], cid)["owner"] == ("none" if start == "waiting" else "ai")

        responses = concurrently(50, lambda i: http.post(
            f"/api/conversations/{cid}/assign", json={"assignee": "me"}, headers=tokens[i]))
        winners = [i for i, r in enumerate(responses) if r.status_code == 200]
        assert len(winners) == 1, [r.status_code for r in responses]
        owner = f"agent:agent{winners[0]:02d}"
        assert responses[winners[0]].json()["conversation"]["owner"] == owner
        losers = [r for r in responses if r.status_code != 200]
        assert [r.status_code for r in losers] == [409] * 49
        assert all(r.json()["owner"] == owner and owner in r.json()["error"] for r in losers)
        detail = conversation(http, tokens[0], cid)
    assert detail["owner"] == owner
    assert [m["data"]["owner"] for m in detail["messages"] if m["kind"] == "assignment"] == [owner]
    events = deployment.redis.xrange(f"baton:{workspace_of(deployment)}:events")
    assert sum('"conversation.assigned"' in fields["data"] for _, fields in events) == 1


# --- an assignment at the fallback's deadline --------------------------------------------------------

def redis_ms(deployment: Deployment) -> int:
    seconds, micros = deployment.redis.time()
    return int(seconds) * 1000 + int(micros) // 1000


def test_an_assignment_racing_the_fallback_timer_at_its_deadline_never_gets_a_form_after_it(
        make_deployment: Callable[..., Deployment]) -> None:
    """Conversations are claimed over HTTP so that the claims land from a little before to a little after
    their deadlines, while fire_due runs flat out in another thread: the form either went out before the
    claim, or never; never after it, never twice."""
    timeout_ms = 2000  # long enough for the handovers to be made first on a loaded machine; the race is at its end
    deployment = make_deployment(handover={"no_human_timeout": timeout_ms / 1000})
    workspace = workspace_of(deployment)
    offsets = list(range(-14, 12, 2))  # ms from the deadline at which a claim is sent (it lands a little later)
    tokens = [agent_token(deployment, f"agent{i:02d}") for i in range(len(offsets))]
    limits = httpx.Limits(max_connections=len(offsets))
    with LiveServer(deployment) as server, httpx.Client(base_url=server.url, timeout=30, limits=limits) as http:
        cids = []
        for _ in offsets:
            cid = Visitor(http, chat_channel(deployment)).say("support")["conversation"]  # type: ignore[arg-type]
            assert take_turn(deployment, workspace, cid) == "handed over (customer)"
            cids.append(cid)
        deadlines = [int(deployment.store.conversation(workspace, cid)["waiting_since"]) + timeout_ms
                     for cid in cids]
        skew_ms = redis_ms(deployment) - time.time() * 1000  # Redis's clock decides the deadlines
        assert redis_ms(deployment) < min(deadlines) - 50, "handing over took too long for this test"
        fired: list[dict[str, Any]] = []
        stop = threading.Event()

        def fire() -> None:
            while not stop.is_set():
                fired.extend(fire_due(deployment))
                time.sleep(0.001)

        def claim(index: int) -> httpx.Response:
            time.sleep(max(0.0, (deadlines[index] + offsets[index] - skew_ms) / 1000 - time.time()))
            return http.post(f"/api/conversations/{cids[index]}/assign", json={"assignee": "me"},
                             headers=tokens[index])

        timer = threading.Thread(target=fire, daemon=True)
        timer.start()
        try:
            responses = concurrently(len(offsets), claim)
        finally:
            stop.set()
            timer.join(timeout=10)
    assert [r.status_code for r in responses] == [200] * len(offsets)  # a sent form does not stop a claim
    assert fire_due(deployment) == []
    fired_for = [f["conversation"] for f in fired]
    assert len(fired_for) == len(set(fired_for))  # exactly once per handover
    outcomes = []
    for cid, deadline in zip(cids, deadlines, strict=True):
        messages = deployment.store.messages(workspace, cid)
        kinds = [m["kind"] for m in messages]
        forms = [m for m in messages if m["kind"] == "contact_form"]
        [claimed] = [m for m in messages if m["kind"] == "assignment"]
        assert len(forms) == (1 if cid in fired_for else 0), kinds
        if forms:  # the timer won: the form went out at or after the deadline, and before the claim
            assert forms[0]["created_at"] >= deadline
            assert kinds.index("contact_form") < kinds.index("assignment"), kinds
        else:
            assert claimed["created_at"] <= deadline + 50  # the timer fires within ms of the deadline
        outcomes.append((claimed["created_at"] - deadline, "form first" if forms else "claimed first"))
    # The claims straddle the deadlines, so normally both outcomes occur; either way the guard held.
    print(f"deadline race outcomes (claim landed ms after the deadline, winner): {outcomes}")


# --- duplicate deliveries of one customer message -----------------------------------------------------

CUSTOMER = "whatsapp:+14155550100"
BUSINESS = "whatsapp:+14155550199"


def twilio_form(sid: str, body: str) -> dict[str, str]:
    return {"MessageSid": sid, "SmsSid": sid, "AccountSid": ACCOUNT_SID, "From": CUSTOMER, "To": BUSINESS,
            "Body": body, "NumMedia": "0", "ProfileName": "Maria", "WaId": "14155550100"}


def deliver_concurrently(server: LiveServer, form: dict[str, str], times: int) -> list[int]:
    """Twilio delivering the same signed webhook `times` times at once (its retries can overlap)."""
    url = f"{server.url}/webhooks/wa"
    signature = RequestValidator(AUTH_TOKEN).compute_signature(url, form)
    responses = concurrently(times, lambda _: httpx.post(url, data=form, headers={
        "X-Twilio-Signature": signature, "I-Twilio-Idempotency-Token": "tok"}, timeout=30))
    return [r.status_code for r in responses]


def test_a_duplicate_webhook_during_a_handover_is_one_message_one_handover_and_no_reply(
        make_deployment: Callable[..., Deployment], notifications: list[dict[str, Any]]) -> None:
    with FakeTwilio() as twilio:
        deployment = make_deployment(channels=[{
            "name": "wa", "type": "twilio_whatsapp", "account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN,
            "from": BUSINESS, "api_base_url": twilio.base_url}])
        workspace = workspace_of(deployment)
        alex = agent_token(deployment, "alex")
        with LiveServer(deployment) as server:
            # The request for a human, delivered five times at once: one message, one handover.
            assert deliver_concurrently(server, twilio_form("SM" + "1" * 32, "I want a real person"), 5) == [200] * 5
            run_jobs(deployment)
            [cid] = deployment.store.conversation_ids(workspace, "waiting")
            assert [r.form["Body"][0] for r in twilio.requests] == [HANDOVER_NOTICE]

            # While the customer waits for a human, a follow-up delivered five times at once.
            assert deliver_concurrently(server, twilio_form("SM" + "2" * 32, "hello??"), 5) == [200] * 5
            run_jobs(deployment)
            with httpx.Client(base_url=server.url) as http:
                detail = conversation(http, alex, cid)
        assert len(twilio.requests) == 1  # no reply to the follow-up, no second notice
    assert detail["owner"] == "none"
    assert [m["text"] for m in detail["messages"] if m["author"] == "customer"] == ["I want a real person", "hello??"]
    assert [m["kind"] for m in detail["messages"]].count("handover") == 1
    assert deployment.store.conversation(workspace, cid)["handovers"] == 1
    events = [e for _, e in deployment.redis.xrange(f"baton:{workspace}:events")]
    assert sum('"conversation.handover"' in e["data"] for e in events) == 1
    assert sum('"conversation.created"' in e["data"] for e in events) == 1
    assert [n["type"] for n in notifications if n["workspace"] == workspace] == ["handover"]


def test_the_same_webchat_message_posted_concurrently_is_one_message(deployment: Deployment) -> None:
    with LiveServer(deployment) as server:
        base = f"{server.url}/webchat/{chat_channel(deployment)}"
        token = httpx.post(f"{base}/sessions").json()["token"]
        body = {"text": "How long does shipping take?", "client_id": "retry-1"}
        responses = concurrently(10, lambda _: httpx.post(
            f"{base}/messages", json=body, headers={"Authorization": f"Bearer {token}"}, timeout=30))
        assert sorted(r.status_code for r in responses) == [200] * 9 + [201]
        assert len({r.json()["id"] for r in responses}) == 1
        assert [r.json()["duplicate"] for r in responses].count(False) == 1
        run_jobs(deployment)
        history = httpx.get(f"{base}/messages", headers={"Authorization": f"Bearer {token}"}).json()
    assert [(m["author"], m["text"]) for m in history["messages"]] == [
        ("customer", "How long does shipping take?"), ("ai", "Delivery takes 2-4 business days.")]


def test_a_message_recorded_after_redis_lost_the_state_script_is_recorded_once_with_one_turn(
        deployment: Deployment) -> None:
    """After a Redis restart (or SCRIPT FLUSH) EVALSHA fails with NOSCRIPT: the store loads the script and runs
    the operation again, once."""
    with TestClient(create_app(deployment)) as client:
        visitor = Visitor(client, chat_channel(deployment))
        deployment.redis.script_flush()
        visitor.say("What are your opening hours?")
        deployment.redis.script_flush()
        assert deployment.store.counts(workspace_of(deployment))["ai"] == 1  # sync reads need no script
        workspace = workspace_of(deployment)
        assert deployment.redis.lrange(f"baton:{workspace}:turns", 0, -1) == ["1"]
        run_jobs(deployment)  # the worker's store meets NOSCRIPT too
        assert visitor.texts() == ["What are your opening hours?", "We are open Monday to Friday, 9:00 to 17:00."]
