"""Logs an operator can use: one JSON object a line with the context fields, and no secret in any line."""

from __future__ import annotations

import io
import json
import logging

from gateway.logs import JSONFormatter, Throttled


def test_a_json_line_carries_the_context_and_the_traceback() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JSONFormatter())
    logger = logging.getLogger("baton.test-json")
    logger.addHandler(handler)
    try:
        try:
            raise ValueError("boom")
        except ValueError:
            logger.error("turn of %s failed", "7", exc_info=True,
                         extra={"workspace": "demo", "conversation": "7", "channel": "wa"})
    finally:
        logger.removeHandler(handler)
    line = json.loads(stream.getvalue())
    assert line["message"] == "turn of 7 failed" and line["level"] == "error" and line["logger"] == "baton.test-json"
    assert (line["workspace"], line["conversation"], line["channel"]) == ("demo", "7", "wa")
    assert "ValueError: boom" in line["exception"] and line["time"].endswith("Z")


def test_a_repeated_failure_is_logged_once_per_interval_with_a_count() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("baton.test-throttled")
    logger.addHandler(handler)
    try:
        throttled = Throttled(logger, every=60)
        for _ in range(500):
            throttled.warning("Redis unavailable (%s)", "connection refused")
        throttled._last = 0.0  # the interval has passed
        throttled.warning("Redis unavailable (%s)", "connection refused")
    finally:
        logger.removeHandler(handler)
    lines = stream.getvalue().splitlines()
    assert lines == ["Redis unavailable (connection refused)",
                     "Redis unavailable (connection refused) (499 more like this since the last one)"]


def test_no_token_or_secret_reaches_any_log_line(make_deployment, caplog) -> None:  # type: ignore[no-untyped-def]
    from starlette.testclient import TestClient

    from gateway.web.app import create_app
    from tests.conftest import Visitor, agent_token, chat_channel, run_jobs

    deployment = make_deployment()
    caplog.set_level(logging.DEBUG)
    with TestClient(create_app(deployment)) as client:
        alex = agent_token(deployment, "alex", admin=True)
        visitor = Visitor(client, chat_channel(deployment))
        cid = visitor.say("I want to talk to a human")["conversation"]
        run_jobs(deployment)
        client.post(f"/api/conversations/{cid}/assign", json={"assignee": "me"}, headers=alex)
        client.get("/api/conversations", headers={"Authorization": "Bearer baton_x_" + "A" * 32})  # a wrong token
        signed_in = client.post("/inbox/session", json={"token": alex["Authorization"][7:]})
        client.get("/api/events?last_event_id=abc", headers=alex)
    secrets = [alex["Authorization"][7:], visitor.token, signed_in.cookies["baton_session"],
               deployment.config.secret, "baton_x_" + "A" * 32]
    text = "\n".join(record.getMessage() + (str(record.exc_info) if record.exc_info else "")
                     for record in caplog.records)
    assert text  # the flow did log
    for secret in secrets:
        assert secret not in text


def test_handovers_assignments_forms_captures_closes_and_retention_deletions_are_logged_at_info(
        make_deployment, caplog) -> None:  # type: ignore[no-untyped-def]
    import time

    from starlette.testclient import TestClient

    from gateway.handover import fallback
    from gateway.web.app import create_app
    from gateway.work import retention
    from tests.conftest import Visitor, agent_token, chat_channel, run_jobs, workspace_of

    deployment = make_deployment(handover={"no_human_timeout": 0.05}, retention={"closed_days": 1})
    caplog.set_level(logging.INFO)
    with TestClient(create_app(deployment)) as client:
        alex = agent_token(deployment, "alex", admin=True)
        visitor = Visitor(client, chat_channel(deployment))
        cid = visitor.say("I want to talk to a human")["conversation"]
        run_jobs(deployment)
        time.sleep(0.1)
        fallback.fire_due(deployment)
        contact = client.post(f"/webchat/{chat_channel(deployment)}/contact", headers=visitor.headers,
                              json={"name": "Maria", "email": "maria@example.com"})
        assert contact.status_code == 201, contact.text
        assert client.post(f"/api/conversations/{cid}/assign", json={"assignee": "me"}, headers=alex).is_success
        assert client.post(f"/api/conversations/{cid}/close", headers=alex).is_success
        assert client.patch("/api/ai-agent", json={"published": False}, headers=alex).is_success
    assert retention.sweep(deployment, "w1", now_ms=deployment.store.now_ms() + 2 * 86_400_000) == 1
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("baton.") and r.levelno == logging.INFO]
    expected = [f"conversation {cid} handed over to the team (customer): The customer asked for a human",
                f"conversation {cid}: no human took it in 0.05 s; the contact form was sent",
                f"conversation {cid}: contact details captured (name, email) in contact",
                f"conversation {cid}: none → agent:alex (assigned by Alex)",
                f"conversation {cid} closed by agent:alex",
                "AI agent unpublished by Alex; 0 conversation(s) now wait for a human",
                f"conversation {workspace_of(deployment)}/{cid} deleted by retention"]
    for line in expected:
        assert any(line in logged for logged in lines), (line, lines)
    assert "maria@example.com" not in "\n".join(lines)  # which fields, never what the customer wrote in them
