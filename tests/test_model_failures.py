"""A model that hangs, fails, answers garbage or answers too late never leaves the customer in silence: one bounded
attempt (retries only within `retry_budget`), then an immediate handover with the offline summary, and a circuit
breaker that stops asking a model that keeps failing. Real litellm calls to a local OpenAI-compatible server."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from starlette.testclient import TestClient

from gateway.deployment import Deployment
from gateway.handover.lifecycle import HANDOVER_NOTICE
from gateway.web.app import create_app
from tests.conftest import Visitor, agent_token, chat_channel, run_jobs, workspace_of
from tests.fake_openai import FakeOpenAI
from tests.test_health import beat

TIMEOUT = 1.0  # the model's own timeout in these tests; everything else is Baton's default


def hosted(fake: FakeOpenAI, **settings: Any) -> dict[str, Any]:
    """A hosted model as a user configures one: litellm's own defaults, nothing about retries."""
    return {"model": "openai/gpt-4o-mini", "timeout": TIMEOUT,
            "litellm_params": {"api_base": fake.base_url, "api_key": "test"}, **settings}


def hangs(fake: FakeOpenAI) -> None:
    for _ in range(10):
        fake.reply("far too late", delay=TIMEOUT + 20)


def answers_after_the_timeout(fake: FakeOpenAI) -> None:
    for _ in range(10):
        fake.reply("just too late", delay=TIMEOUT + 0.5)


def fails_with_500(fake: FakeOpenAI) -> None:
    for _ in range(50):
        fake.fail(500)


def answers_garbage(fake: FakeOpenAI) -> None:
    for _ in range(10):
        fake.garbage()


def answers_nothing(fake: FakeOpenAI) -> None:
    for _ in range(10):
        fake.reply("")


def refuses_the_key(fake: FakeOpenAI) -> None:
    for _ in range(10):
        fake.fail(401)


# (how the model misbehaves, the most model requests one turn may make)
FAILURES: list[tuple[Callable[[FakeOpenAI], None], int]] = [
    (hangs, 1),                      # a timeout is not retried: the model is not answering
    (answers_after_the_timeout, 1),
    (fails_with_500, 8),             # retried with backoff, only within the budget
    (answers_garbage, 8),            # litellm reads a body that is no completion as a 500
    (answers_nothing, 1),
    (refuses_the_key, 1),            # a refusal will not change on a retry
]


@pytest.mark.parametrize(("misbehave", "most_requests"), FAILURES, ids=[f.__name__ for f, _ in FAILURES])
def test_the_customer_hears_a_person_is_coming_within_the_models_timeout_plus_ten_seconds(
        make_deployment: Callable[..., Deployment], misbehave: Callable[[FakeOpenAI], None],
        most_requests: int) -> None:
    with FakeOpenAI() as fake:
        deployment = make_deployment(ai_agent=hosted(fake))
        headers = agent_token(deployment, "alex")
        misbehave(fake)
        with TestClient(create_app(deployment)) as client:
            visitor = Visitor(client, chat_channel(deployment))
            run_jobs(deployment)  # a worker's start-up (litellm's import) is not the customer's wait
            started = time.monotonic()
            cid = visitor.say("Where is my parcel?")["conversation"]
            run_jobs(deployment)
            waited = time.monotonic() - started
            assert visitor.texts("ai") == [HANDOVER_NOTICE]
            detail = client.get(f"/api/conversations/{cid}", headers=headers).json()["conversation"]
        asked = fake.requests
    assert waited < TIMEOUT + 10, f"the customer waited {waited:.1f} s"
    assert 1 <= len(asked) <= most_requests
    assert all(request.get("tools") for request in asked), "the failed model was asked for a summary"
    assert detail["owner"] == "none"
    assert detail["handover_reason"].startswith("The AI could not answer")
    assert "Where is my parcel?" in detail["handover_summary"]  # the offline summary


def test_retries_stop_at_the_budget_beyond_the_models_timeout(make_deployment: Callable[..., Deployment]) -> None:
    with FakeOpenAI() as fake:
        deployment = make_deployment(ai_agent=hosted(fake, retry_budget=1.5))
        fails_with_500(fake)
        with TestClient(create_app(deployment)) as client:
            visitor = Visitor(client, chat_channel(deployment))
            started = time.monotonic()
            visitor.say("Where is my parcel?")
            run_jobs(deployment)
            waited = time.monotonic() - started
            assert visitor.texts("ai") == [HANDOVER_NOTICE]
        assert 2 <= len(fake.requests) <= 4
    assert waited < TIMEOUT + 1.5 + 2


def test_a_model_that_answers_after_a_failure_within_the_budget_is_used(
        make_deployment: Callable[..., Deployment]) -> None:
    with FakeOpenAI() as fake:
        deployment = make_deployment(ai_agent=hosted(fake))
        fake.fail(503).reply("Your parcel arrives tomorrow.")
        with TestClient(create_app(deployment)) as client:
            visitor = Visitor(client, chat_channel(deployment))
            visitor.say("Where is my parcel?")
            run_jobs(deployment)
            assert visitor.texts("ai") == ["Your parcel arrives tomorrow."]


def test_the_summary_of_a_handover_the_model_asked_for_is_bounded_by_its_own_timeout(
        make_deployment: Callable[..., Deployment]) -> None:
    with FakeOpenAI() as fake:
        deployment = make_deployment(ai_agent=hosted(fake, timeout=5, summary_timeout=1))
        fake.reply_tool_call("handover_to_human", {"reason": "a refund"}).reply("a summary", delay=20)
        run_jobs(deployment)  # a worker's start-up (litellm's import) is not the customer's wait
        with TestClient(create_app(deployment)) as client:
            visitor = Visitor(client, chat_channel(deployment))
            started = time.monotonic()
            cid = visitor.say("I want my money back")["conversation"]
            run_jobs(deployment)
            waited = time.monotonic() - started
            headers = agent_token(deployment, "alex")
            detail = client.get(f"/api/conversations/{cid}", headers=headers).json()["conversation"]
            assert visitor.texts("ai") == [HANDOVER_NOTICE]
        assert len(fake.requests) == 2
    assert waited < 1 + 3
    assert "I want my money back" in detail["handover_summary"]


def test_a_hosted_model_writes_the_handover_summary_in_the_teams_language(
        make_deployment: Callable[..., Deployment]) -> None:
    with FakeOpenAI() as fake:
        deployment = make_deployment(ai_agent=hosted(fake, summary_timeout=5), language="fr")
        fake.reply_tool_call("handover_to_human", {"reason": "a refund"}).reply("Le client veut un remboursement.")
        run_jobs(deployment)
        with TestClient(create_app(deployment)) as client:
            visitor = Visitor(client, chat_channel(deployment))
            cid = visitor.say("I want my money back for the lamp")["conversation"]
            run_jobs(deployment)
            headers = agent_token(deployment, "alex")
            detail = client.get(f"/api/conversations/{cid}", headers=headers).json()["conversation"]
        summary_request = fake.requests[1]
    assert detail["handover_summary"] == "Le client veut un remboursement."
    assert "Write the summary in French." in summary_request["messages"][0]["content"]
    assert "customer: I want my money back for the lamp" in summary_request["messages"][1]["content"]
    assert "tools" not in summary_request  # a summary cannot hand over


QUESTIONS = ["Where is my parcel?", "Do you ship to Canada?", "How long is the warranty?",
             "Can I pay by invoice?", "Which bulb fits the arc lamp?", "Do you have a shop in Lyon?"]


# --- the circuit breaker -----------------------------------------------------------------------------------------

def test_after_repeated_failures_the_ai_hands_over_at_once_and_tries_the_model_again_later(
        make_deployment: Callable[..., Deployment]) -> None:
    with FakeOpenAI() as fake:
        agent = hosted(fake, breaker={"failures": 3, "cool_down": 1.5}, retry_budget=0)
        deployment = make_deployment(ai_agent=agent)
        headers = agent_token(deployment, "alex", admin=True)
        ws = workspace_of(deployment)
        for _ in range(3):
            fake.fail(500)
        with TestClient(create_app(deployment)) as client:
            def customer(text: str) -> Visitor:
                visitor = Visitor(client, chat_channel(deployment))
                visitor.say(text)
                run_jobs(deployment)
                return visitor

            for question in QUESTIONS[:3]:
                assert customer(question).texts("ai") == [HANDOVER_NOTICE]
            assert len(fake.requests) == 3
            state = client.get("/api/ai-agent", headers=headers).json()["ai_agent"]["model_status"]
            assert state["state"] == "open" and state["failures"] >= 3 and "500" in state["last_error"]
            started = time.monotonic()
            fourth = customer(QUESTIONS[3])  # the model is not asked: a person comes at once
            assert fourth.texts("ai") == [HANDOVER_NOTICE]
            assert time.monotonic() - started < 1.0
            assert len(fake.requests) == 3
            events = [e for e in _events(client, headers) if e["type"] == "ai_agent.model"]
            assert [e["state"] for e in events] == ["open"]
            beat(deployment, "w1", timers_age_ms=0)
            ready = client.get("/readyz").json()
            assert any(d["workspace"] == ws and d["state"] == "open" for d in ready.get("degraded", []))
            time.sleep(1.6)  # the cool-down passes: the next turn tries the model again, and it answers
            fake.reply("Back in business.")
            assert customer(QUESTIONS[4]).texts("ai") == ["Back in business."]
            assert client.get("/api/ai-agent", headers=headers).json()["ai_agent"]["model_status"]["state"] == "closed"
            assert customer(QUESTIONS[5]).texts("ai") == [fake.default_text]
            beat(deployment, "w1", timers_age_ms=0)
            assert "degraded" not in client.get("/readyz").json()
            events = [e for e in _events(client, headers) if e["type"] == "ai_agent.model"]
            assert [e["state"] for e in events] == ["open", "closed"]
        assert len(fake.requests) == 5


def test_a_failed_probe_opens_the_circuit_again(make_deployment: Callable[..., Deployment]) -> None:
    with FakeOpenAI() as fake:
        deployment = make_deployment(ai_agent=hosted(fake, breaker={"failures": 2, "cool_down": 1.0},
                                                     retry_budget=0))
        fails_with_500(fake)
        with TestClient(create_app(deployment)) as client:
            visitors = [Visitor(client, chat_channel(deployment)) for _ in range(4)]
            for visitor in visitors[:2]:
                visitor.say("hello?")
                run_jobs(deployment)
            assert len(fake.requests) == 2
            time.sleep(1.1)
            visitors[2].say("hello?")  # the probe: asked, fails, the circuit opens again
            run_jobs(deployment)
            assert len(fake.requests) == 3
            visitors[3].say("hello?")
            run_jobs(deployment)
            assert len(fake.requests) == 3
            for visitor in visitors:
                assert visitor.texts("ai") == [HANDOVER_NOTICE]


def _events(client: TestClient, headers: dict[str, str]) -> list[dict[str, Any]]:
    from tests.conftest import inbox_events

    return inbox_events(client, headers)


def test_the_inbox_says_in_plain_words_that_the_model_answered_something_that_is_no_completion(
        make_deployment: Callable[..., Deployment]) -> None:
    with FakeOpenAI() as fake:
        deployment = make_deployment(ai_agent=hosted(fake, breaker={"failures": 1, "cool_down": 60}, retry_budget=0))
        headers = agent_token(deployment, "alex")
        answers_garbage(fake)
        with TestClient(create_app(deployment)) as client:
            Visitor(client, chat_channel(deployment)).say("Where is my parcel?")
            run_jobs(deployment)
            state = client.get("/api/ai-agent", headers=headers).json()["ai_agent"]["model_status"]
    assert state["state"] == "open"
    assert state["last_error"] == "the model answered HTTP 200 with a body that is not a completion (a proxy's page?)"
