"""The no-human fallback over HTTP with a real Redis: the contact form goes out once when no one picks
the chat up in time, never after an assignment, survives downtime; what the customer leaves is stored."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from starlette.testclient import TestClient
from twilio.request_validator import RequestValidator

from gateway import keys
from gateway.config import parse_config
from gateway.deployment import Deployment
from gateway.handover import fallback
from gateway.handover.fallback import FORM_TEXT, extract, fire_due
from gateway.web.app import create_app
from gateway.work.turn import take_turn
from gateway.work.worker import Chores
from tests.conftest import (
    Visitor,
    agent_token,
    chat_channel,
    config_tree,
    inbox_events,
    run_jobs,
    workspace_of,
)
from tests.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio

TIMEOUT = 0.3  # seconds: the fallback's deadline in these tests (120 s in production)


@pytest.fixture
def deployment(make_deployment: Callable[..., Deployment]) -> Deployment:
    return make_deployment(handover={"no_human_timeout": TIMEOUT})


@pytest.fixture
def alex(deployment: Deployment) -> dict[str, str]:
    return agent_token(deployment, "alex")


def hand_over(visitor: Visitor, deployment: Deployment, text: str = "support") -> str:
    cid = str(visitor.say(text)["conversation"])
    run_jobs(deployment)
    return cid


def hand_over_now(visitor: Visitor, deployment: Deployment, text: str = "support") -> str:
    """Like hand_over, but the AI's turn runs at once, so the test acts well before the deadline."""
    cid = str(visitor.say(text)["conversation"])
    assert take_turn(deployment, workspace_of(deployment), cid) == "handed over (customer)"
    return cid


def redis_ms(deployment: Deployment) -> int:
    seconds, micros = deployment.redis.time()
    return int(seconds) * 1000 + int(micros) // 1000


def deadline_of(deployment: Deployment, cid: str) -> int:
    conversation = deployment.store.conversation(workspace_of(deployment), cid)
    timeout = deployment.workspace(workspace_of(deployment)).handover.no_human_timeout
    return int(conversation["waiting_since"]) + int(timeout * 1000)


def wait_past_deadline(deployment: Deployment, cid: str, deadline: int | None = None) -> None:
    """Sleep until Redis's clock is past the conversation's fallback deadline."""
    deadline = deadline or deadline_of(deployment, cid)
    while (left := deadline - redis_ms(deployment)) >= 0:
        time.sleep(left / 1000 + 0.005)


def forms(visitor: Visitor) -> list[dict[str, Any]]:
    return [m for m in visitor.history()["messages"] if m.get("kind") == "contact_form"]


def send_form(visitor: Visitor, deployment: Deployment) -> str:
    cid = hand_over(visitor, deployment)
    wait_past_deadline(deployment, cid)
    assert [f["conversation"] for f in fire_due(deployment)] == [cid]
    run_jobs(deployment)
    return cid


# --- the form goes out once, never after an assignment --------------------------------------------

def test_the_contact_form_goes_out_once_when_no_human_picks_up_in_time(
        client: TestClient, deployment: Deployment, visitor: Visitor, alex: dict[str, str],
        notifications: list[dict[str, Any]]) -> None:
    cid = hand_over_now(visitor, deployment)
    assert fire_due(deployment) == []  # not yet due
    assert visitor.history()["conversation"]["form_pending"] is False
    wait_past_deadline(deployment, cid)
    [fired] = fire_due(deployment)
    assert fired["conversation"] == cid and fired["late_ms"] >= 0
    assert fire_due(deployment) == []  # a second run, or a second worker, sends nothing more
    run_jobs(deployment)
    [form] = forms(visitor)
    assert form["author"] == "system" and form["text"] == FORM_TEXT
    assert [f["name"] for f in form["rich"]["fields"]] == ["name", "phone", "email", "message"]
    assert visitor.history()["conversation"]["form_pending"] is True
    assert [e["conversation"] for e in inbox_events(client, alex, "contact.form_sent")] == [cid]
    assert [n["conversation"] for n in notifications
            if n["workspace"] == workspace_of(deployment) and n["type"] == "contact_form_sent"] == [cid]


def test_no_form_once_an_agent_has_picked_the_chat_up(client: TestClient, deployment: Deployment,
                                                      visitor: Visitor, alex: dict[str, str]) -> None:
    cid = hand_over(visitor, deployment)
    deadline = deadline_of(deployment, cid)
    assert client.post(f"/api/conversations/{cid}/assign", json={"assignee": "me"}, headers=alex).status_code == 200
    wait_past_deadline(deployment, cid, deadline)
    assert fire_due(deployment) == []
    assert forms(visitor) == []


def test_an_agents_reply_also_cancels_the_form(client: TestClient, deployment: Deployment, visitor: Visitor,
                                               alex: dict[str, str]) -> None:
    cid = hand_over(visitor, deployment)
    deadline = deadline_of(deployment, cid)
    client.post(f"/api/conversations/{cid}/messages", json={"text": "Alex here!"}, headers=alex)
    wait_past_deadline(deployment, cid, deadline)
    assert fire_due(deployment) == [] and forms(visitor) == []


def test_an_assignment_after_the_deadline_but_before_the_timer_fires_wins(
        client: TestClient, deployment: Deployment, visitor: Visitor, alex: dict[str, str]) -> None:
    cid = hand_over(visitor, deployment)
    wait_past_deadline(deployment, cid)  # the timer is due, but no timer loop has run yet
    assert client.post(f"/api/conversations/{cid}/assign", json={"assignee": "me"}, headers=alex).status_code == 200
    assert fire_due(deployment) == []
    assert forms(visitor) == []


def test_a_new_handover_re_arms_the_fallback(client: TestClient, deployment: Deployment, visitor: Visitor,
                                             alex: dict[str, str]) -> None:
    cid = send_form(visitor, deployment)
    client.post(f"/api/conversations/{cid}/assign", json={"assignee": "me"}, headers=alex)
    client.post(f"/api/conversations/{cid}/assign", json={"assignee": "ai"}, headers=alex)
    run_jobs(deployment)
    assert hand_over_now(visitor, deployment, "speak to someone") == cid
    assert fire_due(deployment) == []  # the new wait has its own deadline
    wait_past_deadline(deployment, cid)
    assert [f["conversation"] for f in fire_due(deployment)] == [cid]
    assert len(forms(visitor)) == 2
    assert deployment.store.conversation(workspace_of(deployment), cid)["handovers"] == 2


def test_unassigning_the_ai_arms_the_fallback(client: TestClient, deployment: Deployment, visitor: Visitor,
                                              alex: dict[str, str]) -> None:
    cid = hand_over(visitor, deployment, "What are your opening hours?")
    client.post(f"/api/conversations/{cid}/unassign", headers=alex)
    wait_past_deadline(deployment, cid)
    assert [f["conversation"] for f in fire_due(deployment)] == [cid]


def test_the_form_can_be_turned_off(make_deployment: Callable[..., Deployment]) -> None:
    deployment = make_deployment(handover={"no_human_timeout": TIMEOUT, "contact_form": False})
    with TestClient(create_app(deployment)) as client:
        visitor = Visitor(client, chat_channel(deployment))
        cid = hand_over(visitor, deployment)
        wait_past_deadline(deployment, cid)
        assert fire_due(deployment) == [] and forms(visitor) == []


# --- unpublishing the AI: the wait starts only for a customer who waits for an answer ------------------

def test_unpublishing_starts_the_wait_only_where_the_customer_waits_for_an_answer_or_writes_again(
        client: TestClient, deployment: Deployment, notifications: list[dict[str, Any]]) -> None:
    admin = agent_token(deployment, "robin", admin=True)
    finished, asking = Visitor(client, chat_channel(deployment)), Visitor(client, chat_channel(deployment))
    done = finished.say("What are your opening hours?")["conversation"]
    run_jobs(deployment)  # answered: this customer is not waiting for anything
    pending = asking.say("How long does shipping take?")["conversation"]  # not answered yet
    assert client.patch("/api/ai-agent", json={"published": False}, headers=admin).status_code == 200
    run_jobs(deployment)
    workspace = workspace_of(deployment)
    states = {cid: deployment.store.conversation(workspace, cid) for cid in (done, pending)}
    assert {cid: c["owner"] for cid, c in states.items()} == {done: "none", pending: "none"}
    assert sorted(n["conversation"] for n in notifications
                  if n["workspace"] == workspace and n["type"] == "handover") == sorted([done, pending])
    assert "waiting_since" not in states[done] and "waiting_since" in states[pending]

    wait_past_deadline(deployment, pending)
    assert [f["conversation"] for f in fire_due(deployment)] == [pending]
    time.sleep(2 * TIMEOUT)  # minutes, in production: the customer who was done still gets no form
    assert fire_due(deployment) == []
    run_jobs(deployment)
    assert len(forms(asking)) == 1 and forms(finished) == []

    finished.say("Are you still there?")  # now this customer waits: the team is told, the wait starts
    run_jobs(deployment)
    assert [n["conversation"] for n in notifications
            if n["workspace"] == workspace and n["type"] == "handover"].count(done) == 2
    wait_past_deadline(deployment, done)
    assert [f["conversation"] for f in fire_due(deployment)] == [done]
    run_jobs(deployment)
    assert len(forms(finished)) == 1


def test_publishing_again_gives_the_ai_back_a_customer_who_got_the_form_meanwhile_and_answers_their_question(
        client: TestClient, deployment: Deployment) -> None:
    admin = agent_token(deployment, "robin", admin=True)
    assert client.patch("/api/ai-agent", json={"published": False}, headers=admin).status_code == 200
    visitor = Visitor(client, chat_channel(deployment))
    cid = visitor.say("What are your opening hours?")["conversation"]
    wait_past_deadline(deployment, cid)
    assert [f["conversation"] for f in fire_due(deployment)] == [cid]
    assert visitor.history()["conversation"]["form_pending"] is True
    assert client.patch("/api/ai-agent", json={"published": True}, headers=admin).status_code == 200
    run_jobs(deployment)
    hours = "We are open Monday to Friday, 9:00 to 17:00."
    assert visitor.texts()[-2:] == ["You're chatting with Lumi again.", hours]
    assert visitor.history()["conversation"]["form_pending"] is False
    visitor.say("How long does shipping take?")
    run_jobs(deployment)
    assert visitor.texts()[-1] == "Delivery takes 2-4 business days."
    assert fallback.NOT_UNDERSTOOD not in visitor.texts()


# --- the trigger is durable and prompt ------------------------------------------------------------

def test_a_deadline_that_passed_while_everything_was_down_fires_at_the_next_start(
        client: TestClient, deployment: Deployment, visitor: Visitor) -> None:
    cid = hand_over(visitor, deployment)
    deployment.close()  # every process gone: no timer loop, no worker
    wait_past_deadline(Deployment.build(deployment.config, deployment.redis_url), cid)
    restarted = Deployment.build(deployment.config, deployment.redis_url)
    try:
        assert [f["conversation"] for f in fire_due(restarted)] == [cid]
        assert fire_due(restarted) == []
    finally:
        restarted.close()
    assert [f["text"] for f in forms(visitor)] == [FORM_TEXT]


def lateness_ms(deployment: Deployment, cid: str) -> int:
    conversation = deployment.store.conversation(workspace_of(deployment), cid)
    return int(conversation["form_sent_at"]) - deadline_of(deployment, cid)


def wait_for_form(visitor: Visitor, seconds: float) -> None:
    give_up = time.monotonic() + seconds
    while not forms(visitor):
        assert time.monotonic() < give_up, "no contact form was sent"
        time.sleep(0.02)


def test_the_timer_loop_sends_the_form_within_a_second_of_the_deadline(
        client: TestClient, deployment: Deployment, visitor: Visitor) -> None:
    loop = Chores(deployment, "test")
    loop.start()
    try:
        cid = hand_over(visitor, deployment)
        wait_for_form(visitor, seconds=TIMEOUT + 3)
    finally:
        loop.stop()
    assert 0 <= lateness_ms(deployment, cid) < 1000
    assert len(forms(visitor)) == 1


@pytest.fixture
def worker_deployment(redis_url: str, tmp_path: Path) -> Iterator[tuple[Deployment, Path]]:
    """A deployment whose config is also on disk, for a `baton worker` process to read."""
    workspace = f"t{uuid.uuid4().hex[:10]}"
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config_tree(workspace, handover={"no_human_timeout": 1.0})))
    deployment = Deployment.build(parse_config(path.read_text(), base_dir=tmp_path), redis_url)
    yield deployment, path
    deployment.close()


def test_a_baton_worker_process_answers_hands_over_and_sends_the_form_on_time(
        worker_deployment: tuple[Deployment, Path], redis_url: str) -> None:
    deployment, config = worker_deployment
    command = [sys.executable, "-m", "gateway.cli", "worker", "--config", str(config), "--redis-url", redis_url]
    process = subprocess.Popen(command, env={**os.environ, "PYTHONUNBUFFERED": "1"}, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT)
    try:
        # Its start first (importing litellm took up to 50 s on a loaded machine): then the behaviour, timed.
        workers = keys.key(keys.WORKERS, queue=deployment.config.queue)
        started = time.monotonic() + 180
        while not deployment.redis.zcard(workers):
            assert process.poll() is None and time.monotonic() < started, "the worker never started"
            time.sleep(0.1)
        with TestClient(create_app(deployment)) as client:
            visitor = Visitor(client, chat_channel(deployment))
            cid = visitor.say("support")["conversation"]
            wait_for_form(visitor, seconds=30)
            assert visitor.texts("ai") == ["I'm connecting you with a member of our team. "
                                           "They'll be with you shortly."]
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=30)[0].decode(errors="replace")
    assert 0 <= lateness_ms(deployment, cid) < 1000, output
    assert process.returncode == 0, output


# --- what the customer leaves goes to Contacts ----------------------------------------------------

def submit(visitor: Visitor, **details: Any) -> Any:
    return visitor.client.post(f"/webchat/{visitor.channel}/contact", json=details, headers=visitor.headers)


def test_the_submitted_form_is_stored_in_contacts_and_every_agent_is_told(
        client: TestClient, deployment: Deployment, visitor: Visitor, alex: dict[str, str],
        notifications: list[dict[str, Any]]) -> None:
    cid = send_form(visitor, deployment)
    response = submit(visitor, name="Maria Lopez", email="maria@Example.COM", phone="+44 20 7946 0958",
                      message="Please call me about my order")
    assert response.status_code == 201
    contact_id = response.json()["contact"]
    run_jobs(deployment)
    [contact] = client.get("/api/contacts", headers=alex).json()["contacts"]
    assert contact["id"] == contact_id
    assert (contact["name"], contact["email"], contact["phone"]) == (
        "Maria Lopez", "maria@example.com", "+442079460958")
    assert contact["message"] == "Please call me about my order"
    assert contact["captured_in"] == cid and contact["conversations"] == [cid]
    detail = client.get(f"/api/conversations/{cid}", headers=alex).json()["conversation"]
    assert detail["contact"]["id"] == contact_id and detail["form_state"] == "done"
    [captured] = inbox_events(client, alex, "contact.captured")
    assert captured["conversation"] == cid and captured["email"] == "maria@example.com"
    assert [n["contact"] for n in notifications
            if n["workspace"] == workspace_of(deployment) and n["type"] == "contact_captured"] == [contact_id]
    assert visitor.texts("system")[-1] == "Thank you, Maria Lopez! We'll get back to you at +442079460958 " \
                                          "or maria@example.com."
    assert visitor.history()["conversation"]["form_pending"] is False
    assert submit(visitor, email="maria@example.com").status_code == 409  # the form was answered


def test_details_left_in_a_later_conversation_are_merged_into_the_contact(
        client: TestClient, deployment: Deployment, visitor: Visitor, alex: dict[str, str]) -> None:
    first = send_form(visitor, deployment)
    submit(visitor, name="Maria", email="maria@example.com")
    client.post(f"/api/conversations/{first}/close", headers=alex)
    second = send_form(visitor, deployment)
    assert second != first
    contact_id = submit(visitor, phone="+14155550100").json()["contact"]
    contact = client.get(f"/api/contacts/{contact_id}", headers=alex).json()["contact"]
    assert (contact["name"], contact["email"], contact["phone"]) == ("Maria", "maria@example.com", "+14155550100")
    assert contact["conversations"] == [first, second] and contact["captured_in"] == second


@pytest.mark.parametrize("details, fields", [
    ({"email": "maria@", "name": "Maria"}, {"email"}),
    ({"phone": "12345"}, {"phone"}),
    ({"phone": "+1 415 555"}, {"phone"}),
    ({"email": "not an email", "phone": "call me"}, {"email", "phone"}),
    ({"name": "Maria", "message": "call me"}, {"email", "phone"}),
    ({"email": "maria@example.com", "name": "M" * 200}, {"name"}),
    ({"email": "maria@example.com", "message": {}}, {"message"}),
    ({"email": "maria@example.com", "name": ["Maria"]}, {"name"}),
    ({"phone": 14155550100}, {"phone"}),
    ({"email": None, "phone": "+14155550100"}, {"email"}),
])
def test_invalid_details_are_400_naming_each_bad_field(
        client: TestClient, deployment: Deployment, visitor: Visitor, alex: dict[str, str],
        details: dict[str, Any], fields: set[str]) -> None:
    send_form(visitor, deployment)
    response = submit(visitor, **details)
    assert response.status_code == 400
    assert set(response.json()["fields"]) == fields
    assert visitor.history()["conversation"]["form_pending"] is True  # still waiting for good details
    contacts = client.get("/api/contacts", headers=alex).json()["contacts"]
    assert all("email" not in c and "phone" not in c for c in contacts)


def test_unknown_fields_and_malformed_json_are_400(deployment: Deployment, visitor: Visitor) -> None:
    send_form(visitor, deployment)
    assert submit(visitor, email="maria@example.com", password="x").status_code == 400
    response = visitor.client.post(f"/webchat/{visitor.channel}/contact", content=b"{",
                                   headers={**visitor.headers, "Content-Type": "application/json"})
    assert response.status_code == 400


def test_submitting_when_no_form_is_pending_is_409(client: TestClient, deployment: Deployment) -> None:
    visitor = Visitor(client, chat_channel(deployment))
    assert submit(visitor, email="maria@example.com").status_code == 409  # no conversation at all
    hand_over(visitor, deployment)
    assert submit(visitor, email="maria@example.com").status_code == 409  # waiting, but no form yet
    assert client.post(f"/webchat/{visitor.channel}/contact", json={"email": "maria@example.com"}).status_code == 401


def test_details_written_as_a_chat_reply_to_the_form_are_captured(
        client: TestClient, deployment: Deployment, visitor: Visitor, alex: dict[str, str]) -> None:
    send_form(visitor, deployment)
    visitor.say("sure, it's maria@example.com or +44 20 7946 0958")
    run_jobs(deployment)
    [contact] = client.get("/api/contacts", headers=alex).json()["contacts"]
    assert (contact["email"], contact["phone"]) == ("maria@example.com", "+442079460958")
    assert visitor.history()["conversation"]["form_pending"] is False


def test_a_question_asked_instead_of_filling_the_form_is_not_read_as_failed_contact_details(
        client: TestClient, deployment: Deployment, visitor: Visitor) -> None:
    send_form(visitor, deployment)
    visitor.say("What time do you open tomorrow?")
    run_jobs(deployment)
    assert visitor.texts()[-1] == fallback.NOTED_WITH_FORM
    assert visitor.history()["conversation"]["form_pending"] is True
    visitor.say("Hello? Is anyone there?")  # told once: recorded for the team, not answered again at once
    run_jobs(deployment)
    assert visitor.texts()[-1] == "Hello? Is anyone there?"
    visitor.say("it's 12345")  # an attempt at a number: what is wrong with it is said
    run_jobs(deployment)
    assert visitor.texts()[-1] == fallback.NOT_UNDERSTOOD


@pytest.mark.parametrize("text", [
    "What time do you open tomorrow?", "Is my order shipped yet", "ok", "no thanks", "hello?",
    "¿A qué hora abren mañana?", "Quand est-ce que ma commande arrive ?", "Wann öffnen Sie morgen?",
    "Vocês entregam no sábado?", "A che ora aprite domani?", "I'd rather wait for someone, thanks",
])
def test_the_class_no_question_or_remark_is_taken_for_an_attempt_at_contact_details(text: str) -> None:
    assert not fallback.looks_like_details(text)


@pytest.mark.parametrize("text", ["maria@nowhere", "my number is 12345", "+44 20 79", "0612 34"])
def test_what_looks_like_contact_details_is_checked_as_such(text: str) -> None:
    assert fallback.looks_like_details(text)


@pytest.mark.parametrize("text, found", [
    ("maria@example.com", {"email": "maria@example.com"}),
    ("Call me on +44 20 7946 0958 please", {"phone": "+442079460958"}),
    ("mail: Maria.Lopez@Example.org, phone +1 415 555 0100.", {"email": "Maria.Lopez@example.org",
                                                              "phone": "+14155550100"}),
    ("my number is 12345 and my mail is maria@nowhere", {}),
    ("no thanks, I'll wait", {}),
])
def test_extract_finds_only_valid_contact_details_in_free_text(text: str, found: dict[str, str]) -> None:
    assert extract(text) == found


# --- the same over WhatsApp, where the form is text -----------------------------------------------

CUSTOMER = "whatsapp:+14155550100"
BUSINESS = "whatsapp:+14155550199"


def whatsapp(client: TestClient, sid: str, body: str) -> None:
    form = {"MessageSid": sid, "AccountSid": ACCOUNT_SID, "From": CUSTOMER, "To": BUSINESS, "Body": body,
            "NumMedia": "0", "ProfileName": "Maria", "WaId": "14155550100"}
    signature = RequestValidator(AUTH_TOKEN).compute_signature("http://testserver/webhooks/wa", form)
    assert client.post("/webhooks/wa", data=form, headers={"X-Twilio-Signature": signature}).status_code == 200


def test_on_whatsapp_the_form_is_text_and_the_reply_is_merged_into_the_known_contact(
        make_deployment: Callable[..., Deployment]) -> None:
    with FakeTwilio() as twilio:
        deployment = make_deployment(handover={"no_human_timeout": TIMEOUT}, channels=[{
            "name": "wa", "type": "twilio_whatsapp", "account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN,
            "from": BUSINESS, "api_base_url": twilio.base_url}])
        headers = agent_token(deployment, "alex")
        with TestClient(create_app(deployment)) as client:
            whatsapp(client, "SM" + "1" * 32, "I want to talk to a person")
            run_jobs(deployment)
            [cid] = deployment.store.conversation_ids(workspace_of(deployment), "waiting")
            wait_past_deadline(deployment, cid)
            fire_due(deployment)
            run_jobs(deployment)
            whatsapp(client, "SM" + "2" * 32, "ok: maria@example.com")
            run_jobs(deployment)
            [contact] = client.get("/api/contacts", headers=headers).json()["contacts"]
        bodies = [r.form["Body"][0] for r in twilio.requests]
    assert bodies[1] == f"{FORM_TEXT}\nReply with your name, phone, email, message."
    assert bodies[2] == "Thank you, Maria! We'll get back to you at maria@example.com." or \
        bodies[2].startswith("Thank you")
    assert (contact["name"], contact["phone"], contact["email"]) == ("Maria", "+14155550100", "maria@example.com")
    assert contact["captured_in"] == cid


def test_form_text_names_every_field() -> None:
    labels = [field["label"].lower() for field in fallback.FORM["fields"]]
    assert labels == ["name", "phone", "email", "message"]


def whatsapp_deployment(make_deployment: Callable[..., Deployment], twilio: FakeTwilio) -> Deployment:
    return make_deployment(handover={"no_human_timeout": TIMEOUT}, channels=[{
        "name": "wa", "type": "twilio_whatsapp", "account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN,
        "from": BUSINESS, "api_base_url": twilio.base_url}])


def whatsapp_form_out(client: TestClient, deployment: Deployment) -> str:
    """A WhatsApp customer asked for a person, nobody came, and the form went out as text."""
    whatsapp(client, f"SM{uuid.uuid4().hex}", "I want to talk to a person")
    run_jobs(deployment)
    [cid] = deployment.store.conversation_ids(workspace_of(deployment), "waiting")
    wait_past_deadline(deployment, cid)
    fire_due(deployment)
    run_jobs(deployment)
    return cid


def test_on_whatsapp_a_name_alone_is_enough_with_the_known_number_and_the_customer_is_told_where_we_call_back(
        make_deployment: Callable[..., Deployment]) -> None:
    with FakeTwilio() as twilio:
        deployment = whatsapp_deployment(make_deployment, twilio)
        with TestClient(create_app(deployment)) as client:
            cid = whatsapp_form_out(client, deployment)
            whatsapp(client, f"SM{uuid.uuid4().hex}", "Maria Lopez")
            run_jobs(deployment)
        contact = deployment.store.contact(workspace_of(deployment), "1")
        bodies = [r.form["Body"][0] for r in twilio.requests]
    assert bodies[-1] == "Thank you, Maria Lopez! We'll get back to you at +14155550100."
    assert (contact["name"], contact["phone"], contact["captured_in"]) == ("Maria Lopez", "+14155550100", cid)


def test_on_whatsapp_a_question_after_the_form_is_kept_with_the_known_number_for_the_team_to_call_back(
        make_deployment: Callable[..., Deployment]) -> None:
    with FakeTwilio() as twilio:
        deployment = whatsapp_deployment(make_deployment, twilio)
        with TestClient(create_app(deployment)) as client:
            cid = whatsapp_form_out(client, deployment)
            whatsapp(client, f"SM{uuid.uuid4().hex}", "Is my order shipped yet?")
            run_jobs(deployment)
        contact = deployment.store.contact(workspace_of(deployment), "1")
        bodies = [r.form["Body"][0] for r in twilio.requests]
    assert bodies[-1] == "Thank you, Maria! We'll get back to you at +14155550100."
    assert (contact["phone"], contact["message"], contact["captured_in"]) == (
        "+14155550100", "Is my order shipped yet?", cid)


def test_a_name_alone_where_no_number_is_known_is_answered_with_what_is_missing(
        client: TestClient, deployment: Deployment, visitor: Visitor) -> None:
    send_form(visitor, deployment)
    visitor.say("my name is maria")
    run_jobs(deployment)
    assert visitor.texts()[-1] == f"Thanks, Maria. {fallback.ASK_FOR_REACH}"
    assert visitor.history()["conversation"]["form_pending"] is True
    visitor.say("maria@example.com")
    run_jobs(deployment)
    contact = deployment.store.contact(workspace_of(deployment), "1")
    assert (contact["name"], contact["email"]) == ("Maria", "maria@example.com")


def test_on_whatsapp_messages_after_the_details_are_recorded_and_answered_at_most_every_ten_minutes(
        make_deployment: Callable[..., Deployment]) -> None:
    follow_up = ("Thanks, we've added this to your request. Our team will follow up at +14155550100 or "
                 "maria@example.com.")
    with FakeTwilio() as twilio:
        deployment = whatsapp_deployment(make_deployment, twilio)
        workspace = workspace_of(deployment)
        with TestClient(create_app(deployment)) as client:
            cid = whatsapp_form_out(client, deployment)
            whatsapp(client, f"SM{uuid.uuid4().hex}", "maria@example.com")
            run_jobs(deployment)
            sent = len(twilio.requests)
            for text in ("also, the lamp flickers", "and it came without a bulb"):
                whatsapp(client, f"SM{uuid.uuid4().hex}", text)
                run_jobs(deployment)
            later = [r.form["Body"][0] for r in twilio.requests[sent:]]
            key = keys.key(keys.CONVERSATION, workspace_id=workspace, conversation_id=cid)
            assert deployment.redis.hexists(key, "followed_up_at")
            deployment.redis.hincrby(key, "followed_up_at", -fallback.FOLLOW_UP_EVERY_MS - 1)  # ten minutes on
            whatsapp(client, f"SM{uuid.uuid4().hex}", "any news?")
            run_jobs(deployment)
        customer = [m["text"] for m in deployment.store.messages(workspace, cid) if m["author"] == "customer"]
        bodies = [r.form["Body"][0] for r in twilio.requests]
    assert later == [follow_up]  # the second message, a minute later, is recorded without another reply
    assert customer[-3:] == ["also, the lamp flickers", "and it came without a bulb", "any news?"]
    assert bodies[-1] == follow_up
