"""Everything Baton tells the customer outside a turn's own answer, in the customer's language, as decision tables:
each notice × six languages, over HTTP with a real Valkey. The language is stored on the conversation by the turn's
commit (or by the first clear inbound message), and read by the state script where one operation speaks to many
conversations (the no-human timer, publishing the AI again, automatic assignment) or where the caller reads nothing
of the conversation (an agent's action, the web form)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from starlette.testclient import TestClient

from gateway import keys, texts
from gateway.deployment import Deployment
from gateway.handover import fallback
from gateway.hours import describe
from gateway.web.app import create_app
from tests.conftest import Visitor, agent_token, chat_channel, run_jobs, workspace_of
from tests.test_fallback import forms, wait_past_deadline

TIMEOUT = 0.3
#: What a customer writes to ask for a person, per language (each is read as that language and as the request).
ASK = {
    "en": "I want to talk to a person, please",
    "es": "Quiero hablar con una persona, por favor",
    "fr": "Je voudrais parler à un conseiller, s'il vous plaît",
    "de": "Ich möchte bitte mit einem Menschen sprechen",
    "pt": "Quero falar com um atendente, por favor",
    "it": "Vorrei parlare con un operatore, per favore",
}
#: A question for the team while the form is out, per language.
QUESTION = {
    "en": "Is my order already on its way?",
    "es": "¿Mi pedido ya está en camino?",
    "fr": "Est-ce que ma commande est déjà partie ?",
    "de": "Ist meine Bestellung schon unterwegs?",
    "pt": "O meu pedido já está a caminho?",
    "it": "Il mio ordine è già in viaggio?",
}
LANGUAGES = list(ASK)


def said(key: str, language: str, **values: str) -> str:
    return texts.TEXTS[key][language].format(**values) if values else texts.TEXTS[key][language]


def handed_over(client: TestClient, deployment: Deployment, language: str) -> tuple[Visitor, str]:
    visitor = Visitor(client, chat_channel(deployment))
    cid = str(visitor.say(ASK[language])["conversation"])
    run_jobs(deployment)
    assert visitor.texts()[-1] == said("handover_notice", language)
    return visitor, cid


def form_out(client: TestClient, deployment: Deployment, language: str) -> tuple[Visitor, str]:
    """The timer path end to end: asked for a person, nobody came, the worker's timer sent the form."""
    visitor, cid = handed_over(client, deployment, language)
    wait_past_deadline(deployment, cid)
    assert [f["conversation"] for f in fallback.fire_due(deployment)] == [cid]
    run_jobs(deployment)
    return visitor, cid


def stored_language(deployment: Deployment, cid: str) -> str:
    conversation = keys.key(keys.CONVERSATION, workspace_id=workspace_of(deployment), conversation_id=cid)
    return str(deployment.redis.hget(conversation, "language") or "")


@pytest.fixture
def deployment(make_deployment: Callable[..., Deployment]) -> Deployment:
    return make_deployment(handover={"no_human_timeout": TIMEOUT})


@pytest.fixture
def admin(deployment: Deployment) -> dict[str, str]:
    return agent_token(deployment, "alex", admin=True)


# --- the table: each notice × each language ------------------------------------------------------------------------

@pytest.mark.parametrize("language", LANGUAGES)
def test_the_timer_s_contact_form_is_in_the_customer_s_language_with_its_labels(
        client: TestClient, deployment: Deployment, language: str) -> None:
    visitor, cid = form_out(client, deployment, language)
    assert stored_language(deployment, cid) == language
    [form] = forms(visitor)
    assert form["text"] == said("contact_form", language)
    assert [f["label"] for f in form["rich"]["fields"]] == [texts.LABELS[name][language]
                                                           for name in ("name", "phone", "email", "message")]


@pytest.mark.parametrize("language", LANGUAGES)
def test_an_agent_joining_is_announced_in_the_customer_s_language(
        client: TestClient, deployment: Deployment, admin: dict[str, str], language: str) -> None:
    visitor, cid = handed_over(client, deployment, language)
    assert client.post(f"/api/conversations/{cid}/assign", json={"assignee": "me"}, headers=admin).status_code == 200
    assert visitor.texts()[-1] == said("joined", language, name="Alex")


@pytest.mark.parametrize("language", LANGUAGES)
def test_an_agent_s_reply_that_takes_the_chat_is_announced_in_the_customer_s_language(
        client: TestClient, deployment: Deployment, admin: dict[str, str], language: str) -> None:
    visitor, cid = handed_over(client, deployment, language)
    response = client.post(f"/api/conversations/{cid}/messages", json={"text": "Hi!"}, headers=admin)
    assert response.status_code in (200, 201), response.text
    assert visitor.texts()[-2:] == [said("joined", language, name="Alex"), "Hi!"]


@pytest.mark.parametrize("language", LANGUAGES)
def test_back_with_the_ai_and_closed_are_said_in_the_customer_s_language(
        client: TestClient, deployment: Deployment, admin: dict[str, str], language: str) -> None:
    visitor, cid = handed_over(client, deployment, language)
    assert client.post(f"/api/conversations/{cid}/assign", json={"assignee": "ai"}, headers=admin).status_code == 200
    assert visitor.texts()[-1] == said("back_with_ai", language, name="Lumi")
    assert client.post(f"/api/conversations/{cid}/close", headers=admin).status_code == 200
    assert visitor.texts()[-1] == said("closed", language)


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_web_form_s_confirmation_is_in_the_customer_s_language(
        client: TestClient, deployment: Deployment, language: str) -> None:
    visitor, _ = form_out(client, deployment, language)
    response = client.post(f"/webchat/{visitor.channel}/contact", json={"name": "Ana", "email": "ana@example.com"},
                           headers=visitor.headers)
    assert response.status_code == 201, response.text
    assert visitor.texts()[-1] == said("confirmation", language, name=", Ana", reach="ana@example.com")


@pytest.mark.parametrize("language", LANGUAGES)
def test_noted_and_follow_up_are_said_in_the_customer_s_language(
        client: TestClient, deployment: Deployment, language: str) -> None:
    visitor, _ = form_out(client, deployment, language)
    visitor.say(QUESTION[language])
    run_jobs(deployment)
    assert visitor.texts()[-1] == said("noted_with_form", language)
    visitor.say("ana@example.com")
    run_jobs(deployment)
    assert visitor.texts()[-1] == said("confirmation", language, name="", reach="ana@example.com")
    visitor.say(QUESTION[language])
    run_jobs(deployment)
    assert visitor.texts()[-1] == said("follow_up", language, reach="ana@example.com")


@pytest.mark.parametrize("language", LANGUAGES)
def test_publishing_again_tells_a_customer_who_wrote_while_unpublished_in_their_language(
        client: TestClient, deployment: Deployment, admin: dict[str, str], language: str) -> None:
    """No turn runs while the AI is unpublished: the language comes from the customer's first clear message."""
    assert client.patch("/api/ai-agent", json={"published": False}, headers=admin).status_code == 200
    visitor = Visitor(client, chat_channel(deployment))
    cid = str(visitor.say(QUESTION[language])["conversation"])
    run_jobs(deployment)
    assert stored_language(deployment, cid) == language
    assert client.patch("/api/ai-agent", json={"published": True}, headers=admin).status_code == 200
    assert said("back_with_ai", language, name="Lumi") in visitor.texts()


@pytest.mark.parametrize("language", LANGUAGES)
def test_automatic_assignment_announces_the_agent_in_the_customer_s_language(
        make_deployment: Callable[..., Deployment], language: str) -> None:
    deployment = make_deployment(handover={"no_human_timeout": TIMEOUT},
                                 assignment={"mode": "round_robin", "capacity": 5})
    sam = agent_token(deployment, "sam")
    with TestClient(create_app(deployment)) as client:
        assert client.put("/api/me/presence", json={"status": "online"}, headers=sam).status_code == 200
        visitor = Visitor(client, chat_channel(deployment))
        visitor.say(ASK[language])
        run_jobs(deployment)
        assert visitor.texts()[-2:] == [said("handover_notice", language), said("joined", language, name="Sam")]


# --- the workspace's language and wording ----------------------------------------------------------------------

def test_a_customer_whose_language_is_unclear_gets_the_workspace_s_and_its_own_wording_on_the_timer(
        make_deployment: Callable[..., Deployment]) -> None:
    own = "Lo sentimos: nadie del equipo está libre. Déjanos tus datos y te llamamos."
    deployment = make_deployment(handover={"no_human_timeout": TIMEOUT}, language="es",
                                 texts={"contact_form": {"es": own}, "joined": {"fr": "{name} est là."}})
    with TestClient(create_app(deployment)) as client:
        visitor = Visitor(client, chat_channel(deployment))
        cid = str(visitor.say("human")["conversation"])  # a word says no language: the workspace's stands
        run_jobs(deployment)
        wait_past_deadline(deployment, cid)
        fallback.fire_due(deployment)
        run_jobs(deployment)
        assert forms(visitor)[0]["text"] == own
        french, fcid = handed_over(client, deployment, "fr")
        admin = agent_token(deployment, "alex", admin=True)
        assert client.post(f"/api/conversations/{fcid}/assign", json={"assignee": "me"},
                           headers=admin).status_code == 200
        assert french.texts()[-1] == "Alex est là."


def test_a_short_message_does_not_flip_the_stored_language(client: TestClient, deployment: Deployment,
                                                          admin: dict[str, str]) -> None:
    visitor, cid = handed_over(client, deployment, "es")
    assert client.post(f"/api/conversations/{cid}/assign", json={"assignee": "ai"}, headers=admin).status_code == 200
    visitor.say("ok")
    run_jobs(deployment)
    assert stored_language(deployment, cid) == "es"


# --- when the team is back, in each language -------------------------------------------------------------------

MONDAY_9 = datetime(2026, 4, 6, 9, 0, tzinfo=UTC)
FRIDAY_18 = datetime(2026, 4, 3, 18, 0, tzinfo=UTC)
BACK = [
    ("en", "on Monday 6 April at 09:00", "today at 09:00", "tomorrow at 09:00", "soon"),
    ("es", "el lunes 6 de abril a las 09:00", "hoy a las 09:00", "mañana a las 09:00", "pronto"),
    ("fr", "le lundi 6 avril à 09:00", "aujourd'hui à 09:00", "demain à 09:00", "bientôt"),
    ("de", "am Montag, 6. April um 09:00", "heute um 09:00", "morgen um 09:00", "bald"),
    ("pt", "segunda-feira, 6 de abril, às 09:00", "hoje às 09:00", "amanhã às 09:00", "em breve"),
    ("it", "lunedì 6 aprile alle 09:00", "oggi alle 09:00", "domani alle 09:00", "presto"),
]


@pytest.mark.parametrize(("language", "later", "today", "tomorrow", "soon"), BACK)
def test_when_the_team_is_back_is_said_in_each_language(language: str, later: str, today: str, tomorrow: str,
                                                       soon: str) -> None:
    assert describe(MONDAY_9, FRIDAY_18, language) == later
    assert describe(MONDAY_9, datetime(2026, 4, 6, 7, 0, tzinfo=UTC), language) == today
    assert describe(MONDAY_9, datetime(2026, 4, 5, 20, 0, tzinfo=UTC), language) == tomorrow
    assert describe(None, FRIDAY_18, language) == soon


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_timer_s_form_outside_business_hours_says_when_the_team_is_back_in_the_customer_s_language(
        make_deployment: Callable[..., Deployment], language: str) -> None:
    closed_now = {"timezone": "UTC", "weekly": {}, "form_at_once": False}  # never open: "soon"
    deployment = make_deployment(handover={"no_human_timeout": TIMEOUT}, business_hours=closed_now)
    with TestClient(create_app(deployment)) as client:
        visitor, _ = form_out(client, deployment, language)
        back = describe(None, FRIDAY_18, language)
        assert forms(visitor)[0]["text"] == said("contact_form_away", language, back=back)


def test_a_language_table_reaches_the_state_script_with_the_workspace_s_as_default() -> None:
    every: dict[str, Any] = texts.every("joined", "de", {"joined": {"de": "{name} ist da."}})
    assert every["default"] == "de" and every["de"] == "{name} ist da." and set(every) == {*texts.LANGUAGES, "default"}
