"""The contact form over WhatsApp text: a decision table of real-looking replies (phones in many formats and
countries, emails, a name alone, "no thanks", six languages mixed, garbage), each read by `read_reply` and then sent
through a signed Twilio webhook to a real Redis, checking what lands in Contacts and what the customer is told."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import phonenumbers
import pytest
from starlette.testclient import TestClient
from twilio.request_validator import RequestValidator

from gateway import texts
from gateway.deployment import Deployment
from gateway.handover import fallback
from gateway.handover.fallback import read_reply
from gateway.web.app import create_app
from tests.conftest import run_jobs, workspace_of
from tests.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio

BUSINESS = "whatsapp:+14155550199"
US, GB, FR, DE, BR, ES, IT = ("+14155550101", "+447400123456", "+33698765432", "+4915198765432", "+5511987654321",
                              "+34699123456", "+393477654321")

# What the reply is, for the turn that reads it:
CAPTURED = "captured"          # a phone or an email: stored in Contacts, the customer thanked
KNOWN = "known number"         # a name or a remark only: stored with the number the customer writes from
DECLINED = "declined"          # "no thanks": nothing stored, the customer told they can write again
NOT_UNDERSTOOD = "not understood"  # an attempt at details that are not valid: asked again, nothing stored
IGNORED = "ignored"            # no words (emoji, punctuation, a keyboard mash): recorded, no answer, nothing stored

# (the customer's number, their reply, what is read from it, what it is)
TABLE: list[tuple[str, str, dict[str, str], str]] = [
    (US, "I'm Maria, maria@example.com - my arc lamp arrived broken",
     {"name": "Maria", "email": "maria@example.com", "message": "my arc lamp arrived broken"}, CAPTURED),
    (US, "Maria Lopez\nmaria@example.com", {"name": "Maria Lopez", "email": "maria@example.com"}, CAPTURED),
    (US, "maria lopez\nmaria.lopez@example.com", {"name": "Maria Lopez", "email": "maria.lopez@example.com"},
     CAPTURED),
    (US, "MARIA LOPEZ maria@example.com", {"name": "Maria Lopez", "email": "maria@example.com"}, CAPTURED),
    (GB, "sure, it's maria@example.com or +44 20 7946 0958", {"email": "maria@example.com", "phone": "+442079460958"},
     CAPTURED),
    (US, "Call me on +44 20 7946 0958 please", {"phone": "+442079460958"}, CAPTURED),
    (US, "+1 (415) 555-2671", {"phone": "+14155552671"}, CAPTURED),
    (US, "(415) 555-2671", {"phone": "+14155552671"}, CAPTURED),  # national: read in the customer's country
    (GB, "0044 20 7946 0958", {"phone": "+442079460958"}, CAPTURED),
    (FR, "06 12 34 56 78", {"phone": "+33612345678"}, CAPTURED),
    (FR, "Je m'appelle Pierre Dubois, 06 12 34 56 78", {"name": "Pierre Dubois", "phone": "+33612345678"}, CAPTURED),
    (DE, "Ich bin Jonas Weber, erreichbar unter 0151 23456789. Die Lampe flackert.",
     {"name": "Jonas Weber", "phone": "+4915123456789", "message": "Die Lampe flackert."}, CAPTURED),
    (BR, "Meu nome é joão da silva, (11) 91234-5678", {"name": "João da Silva", "phone": "+5511912345678"}, CAPTURED),
    (ES, "Soy Ana García, mi correo es ana.garcia@ejemplo.es", {"name": "Ana García", "email": "ana.garcia@ejemplo.es"},
     CAPTURED),
    (IT, "Mi chiamo Giulia Rossi - giulia.rossi@esempio.it - la lampada non si accende",
     {"name": "Giulia Rossi", "email": "giulia.rossi@esempio.it", "message": "la lampada non si accende"}, CAPTURED),
    (US, "name: Maria Lopez\nphone: +44 20 7946 0958\nemail: maria@example.com\nmessage: the lamp is broken",
     {"name": "Maria Lopez", "phone": "+442079460958", "email": "maria@example.com", "message": "the lamp is broken"},
     CAPTURED),
    (US, "Nombre: Lucía Fernández\nTeléfono: +52 55 1234 5678", {"name": "Lucía Fernández", "phone": "+525512345678"},
     CAPTURED),
    (US, "+91 98765 43210 – Ravi", {"name": "Ravi", "phone": "+919876543210"}, CAPTURED),
    (US, "whatsapp me at +81 90-1234-5678, Kenji", {"name": "Kenji", "phone": "+819012345678"}, CAPTURED),
    (US, "Beatriz Costa, +351 912 345 678", {"name": "Beatriz Costa", "phone": "+351912345678"}, CAPTURED),
    (ES, "Hola soy maria, mi numero +34 612 345 678, gracias", {"name": "Maria", "phone": "+34612345678"}, CAPTURED),
    (US, "Hi, soy Carlos, carlos@example.mx", {"name": "Carlos", "email": "carlos@example.mx"}, CAPTURED),
    (FR, "Bonjour, my email is claire@example.fr", {"email": "claire@example.fr"}, CAPTURED),
    (US, "I'm Maria and my lamp is broken, call me at +1 415 555 2671",
     {"name": "Maria", "phone": "+14155552671", "message": "my lamp is broken"}, CAPTURED),
    (GB, "Regards, Tom\ntom@example.co.uk", {"name": "Tom", "email": "tom@example.co.uk"}, CAPTURED),
    (GB, "Email: tom@example.co.uk\nTom", {"name": "Tom", "email": "tom@example.co.uk"}, CAPTURED),
    (US, "Maria Lopez", {"name": "Maria Lopez"}, KNOWN),
    (US, "my name is maria", {"name": "Maria"}, KNOWN),
    (US, "Is my order shipped yet?", {"message": "Is my order shipped yet?"}, KNOWN),
    (US, "I'm waiting for my order", {"message": "I'm waiting for my order"}, KNOWN),
    (US, "no thanks", {}, DECLINED),
    (ES, "No, gracias", {}, DECLINED),
    (FR, "non merci, j'attends", {}, DECLINED),
    (DE, "nein danke", {}, DECLINED),
    (US, "my number is 12345 and my mail is maria@nowhere", {}, NOT_UNDERSTOOD),
    (GB, "+44 20 79", {}, NOT_UNDERSTOOD),
    (US, "👍", {}, IGNORED),
    (US, "asdfghjkl", {}, IGNORED),
    (US, "???", {}, IGNORED),
]


def region(number: str) -> str | None:
    return phonenumbers.region_code_for_number(phonenumbers.parse(number))


@pytest.mark.parametrize("number, reply, read, outcome", TABLE, ids=[row[1][:40] for row in TABLE])
def test_each_reply_is_read_as_the_table_says(number: str, reply: str, read: dict[str, str], outcome: str) -> None:
    found = read_reply(reply, region(number))
    fields = {k: v for k, v in found.items() if k in ("name", "phone", "email", "message")}
    if outcome in (CAPTURED, KNOWN):
        assert fields == read
    else:
        assert not {"name", "phone", "email"} & set(found)
    assert found.get("declined", False) is (outcome == DECLINED)
    assert (found.get("garbage", False) and not fallback.looks_like_details(reply)) is (outcome == IGNORED)


def test_the_table_has_thirty_replies_in_the_six_languages_and_every_outcome() -> None:
    assert len(TABLE) >= 30
    assert {row[3] for row in TABLE} == {CAPTURED, KNOWN, DECLINED, NOT_UNDERSTOOD, IGNORED}
    assert len({region(row[0]) for row in TABLE}) >= 7


def webhook(client: TestClient, sid: str, customer: str, body: str) -> None:
    form = {"MessageSid": sid, "AccountSid": ACCOUNT_SID, "From": f"whatsapp:{customer}", "To": BUSINESS,
            "Body": body, "NumMedia": "0", "ProfileName": "Sam", "WaId": customer.lstrip("+")}
    signature = RequestValidator(AUTH_TOKEN).compute_signature("http://testserver/webhooks/wa", form)
    assert client.post("/webhooks/wa", data=form, headers={"X-Twilio-Signature": signature}).status_code == 200


def test_every_reply_in_the_table_over_whatsapp_lands_in_contacts_as_the_table_says(
        make_deployment: Callable[..., Deployment]) -> None:
    """One customer per row (a number of the row's country, distinct per row), all handed over, all given the text
    form, each replying with the row's text."""
    rows = [(f"{number[:-2]}{i:02d}", reply, read, outcome) for i, (number, reply, read, outcome) in enumerate(TABLE)]
    with FakeTwilio() as twilio:
        deployment = make_deployment(handover={"no_human_timeout": 0.3}, channels=[{
            "name": "wa", "type": "twilio_whatsapp", "account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN,
            "from": BUSINESS, "api_base_url": twilio.base_url}])
        workspace = workspace_of(deployment)
        with TestClient(create_app(deployment)) as client:
            for i, (customer, *_rest) in enumerate(rows):
                webhook(client, f"SM{i:032d}", customer, "I want to talk to a person")
            run_jobs(deployment)
            conversation = {deployment.store.contact(workspace, deployment.store.conversation(workspace, cid)[
                "contact"])["phone"]: cid for cid in deployment.store.conversation_ids(workspace, "waiting", limit=100)}
            assert set(conversation) == {row[0] for row in rows}
            time.sleep(0.35)
            assert len(fallback.fire_due(deployment)) == len(rows)
            run_jobs(deployment)
            for i, (customer, reply, *_rest) in enumerate(rows):
                webhook(client, f"SM{i + 100:032d}", customer, reply)
            run_jobs(deployment)
        answers: dict[str, list[str]] = {}
        for request in twilio.requests:
            answers.setdefault(request.form["To"][0].removeprefix("whatsapp:"), []).append(request.form["Body"][0])
        problems = [problem for row in rows if (problem := _check(deployment, workspace, conversation, answers, *row))]
    assert problems == []


def _check(deployment: Deployment, workspace: str, conversation: dict[str, str], answers: dict[str, list[str]],
           customer: str, reply: str, read: dict[str, str], outcome: str) -> str:
    """What is wrong with one row's end, or ''."""
    cid = conversation[customer]
    contact: dict[str, Any] = deployment.store.contact(
        workspace, deployment.store.conversation(workspace, cid)["contact"])
    stored = {k: contact[k] for k in ("name", "phone", "email", "message") if contact.get(k)}
    last = answers[customer][-1]
    form_text = answers[customer][1]
    declined = {texts.say("form_declined", language) for language in texts.LANGUAGES}
    expected: dict[str, str] = {}
    if outcome == CAPTURED:
        expected = {"phone": customer, "name": "Sam", **read}
    elif outcome == KNOWN:
        expected = {"phone": customer, "name": "Sam", **read} if "message" in read else {"phone": customer, **read}
        expected.setdefault("message", reply) if "name" not in read else None
    if outcome in (CAPTURED, KNOWN):
        ok = contact.get("captured_in") == cid and stored == expected and last.startswith(
            tuple(texts.say("confirmation", lang, name="", reach="")[:5] for lang in texts.LANGUAGES))
    elif outcome == DECLINED:
        ok = "captured_in" not in contact and last in declined
    elif outcome == NOT_UNDERSTOOD:
        ok = "captured_in" not in contact and last == fallback.NOT_UNDERSTOOD
    else:
        ok = "captured_in" not in contact and last == form_text
    return "" if ok else f"{reply!r} ({outcome}): stored {stored}, expected {expected}; told {last!r}"
