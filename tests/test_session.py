"""The team inbox's cookie session over HTTP: signing in sets a signed HttpOnly SameSite=Strict cookie that
authenticates /api calls, state changes need the session's X-CSRF-Token, and a tampered, expired, signed-out
or revoked session stops working. Bearer-token calls need no CSRF value."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from gateway.deployment import Deployment
from gateway.web import session
from gateway.web.app import create_app
from gateway.web.auth import revoke_agent
from tests.conftest import Visitor, agent_token, chat_channel, inbox_events, workspace_of


@pytest.fixture
def token(deployment: Deployment) -> str:
    return agent_token(deployment, "alex")["Authorization"].removeprefix("Bearer ")


@pytest.fixture
def browser(deployment: Deployment) -> Iterator[TestClient]:
    """A client that keeps cookies, like the inbox page in a browser."""
    with TestClient(create_app(deployment)) as client:
        yield client


def sign_in(browser: TestClient, token: str) -> Any:
    response = browser.post("/inbox/session", json={"token": token})
    assert response.status_code == 200, response.text
    return response


def waiting_conversation(browser: TestClient, deployment: Deployment) -> str:
    visitor = Visitor(browser, chat_channel(deployment))
    return str(visitor.say("hello")["conversation"])


def test_signing_in_sets_an_httponly_samesite_strict_cookie_and_returns_the_agent_and_csrf_value(
        browser: TestClient, token: str, deployment: Deployment) -> None:
    response = sign_in(browser, token)
    body = response.json()
    assert body["agent"] == {"id": "alex", "name": "Alex", "admin": False, "teams": []}
    assert body["workspace"] == workspace_of(deployment) and len(body["csrf"]) == 40
    cookie = response.headers["set-cookie"]
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert cookie.startswith(f"{session.COOKIE}={workspace_of(deployment)}.")
    assert {"httponly", "path", "max-age"} <= attributes
    assert "samesite=strict" in cookie.lower() and "path=/" in cookie.lower()
    secret = token.removeprefix(f"baton_{workspace_of(deployment)}_")  # its random part (it may hold "_" itself)
    assert len(secret) == 32 and secret not in cookie  # an opaque session id: the agent's token is not in it at all
    assert "secure" not in attributes  # plain http here; set behind https
    again = browser.get("/inbox/session")
    assert again.status_code == 200 and again.json() == body


def test_api_reads_work_with_only_the_cookie(browser: TestClient, token: str, deployment: Deployment) -> None:
    cid = waiting_conversation(browser, deployment)
    sign_in(browser, token)
    listing = browser.get("/api/conversations")
    assert listing.status_code == 200 and [c["id"] for c in listing.json()["conversations"]] == [cid]
    assert browser.get("/api/team").json()["me"]["id"] == "alex"
    assert [e["conversation"] for e in inbox_events(browser, {}, "conversation.created")] == [cid]


def test_api_changes_with_the_cookie_need_the_sessions_csrf_value(browser: TestClient, token: str,
                                                                  deployment: Deployment) -> None:
    cid = waiting_conversation(browser, deployment)
    csrf = sign_in(browser, token).json()["csrf"]
    path = f"/api/conversations/{cid}/assign"
    missing = browser.post(path, json={"assignee": "me"})
    assert missing.status_code == 403 and "X-CSRF-Token" in missing.json()["error"]
    wrong = browser.post(path, json={"assignee": "me"}, headers={"X-CSRF-Token": "0" * 40})
    assert wrong.status_code == 403
    assert deployment.store.conversation(workspace_of(deployment), cid)["owner"] == "ai"  # nothing changed
    ok = browser.post(path, json={"assignee": "me"}, headers={"X-CSRF-Token": csrf})
    assert ok.status_code == 200, ok.text
    assert ok.json()["conversation"]["owner"] == "agent:alex"


def test_the_csrf_value_of_another_session_is_refused(browser: TestClient, token: str,
                                                      deployment: Deployment) -> None:
    cid = waiting_conversation(browser, deployment)
    first = sign_in(browser, token).json()["csrf"]
    second = sign_in(browser, token).json()["csrf"]  # signing in again starts a new session
    assert first != second
    response = browser.post(f"/api/conversations/{cid}/close", headers={"X-CSRF-Token": first})
    assert response.status_code == 403


def test_a_changed_ended_or_expired_session_is_401(browser: TestClient, token: str, deployment: Deployment) -> None:
    from gateway import keys
    from gateway.web.auth import digest

    value = sign_in(browser, token).cookies[session.COOKIE]
    workspace = workspace_of(deployment)
    expired = sign_in(browser, token).cookies[session.COOKIE]
    stored = keys.key(keys.SESSION, workspace_id=workspace, digest=digest(expired))
    deployment.redis.set(stored, json.dumps({"agent": "alex", "expires": int(time.time()) - 1}), ex=60)
    cases = {
        "changed": value[:-2] + ("AA" if not value.endswith("AA") else "BB"),
        "garbage": "not-a-session",
        "another workspace": "nowhere." + value.split(".", 1)[1],
        "past its absolute expiry": expired,
    }
    for name, cookie in cases.items():
        browser.cookies.clear()
        browser.cookies.set(session.COOKIE, cookie)
        assert browser.get("/api/conversations").status_code == 401, name
        assert browser.get("/inbox/session").status_code == 401, name
    browser.cookies.clear()
    browser.cookies.set(session.COOKIE, value)
    assert browser.get("/api/conversations").status_code == 200  # the real one works
    idle = deployment.redis.ttl(keys.key(keys.SESSION, workspace_id=workspace, digest=digest(value)))
    assert 0 < idle <= 12 * 3600  # it ends after 12 idle hours, renewed by use


def test_rotating_an_agents_token_ends_their_sessions_and_the_old_token(browser: TestClient, token: str,
                                                                        deployment: Deployment) -> None:
    from gateway.web.auth import rotate_token

    sign_in(browser, token)
    assert browser.get("/api/conversations").status_code == 200
    fresh = rotate_token(deployment.redis, workspace_of(deployment), "alex")
    assert browser.get("/api/conversations").status_code == 401
    assert browser.get("/api/conversations", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert browser.get("/api/conversations", headers={"Authorization": f"Bearer {fresh}"}).status_code == 200


def test_the_cookie_is_secure_behind_a_tls_proxy_when_public_url_is_https(
        make_deployment: Callable[..., Deployment]) -> None:
    deployment = make_deployment(public_url="https://support.example.com")
    with TestClient(create_app(deployment)) as browser:
        response = sign_in(browser, agent_token(deployment)["Authorization"].removeprefix("Bearer "))
    assert "secure" in {part.strip().lower() for part in response.headers["set-cookie"].split(";")}


@pytest.mark.parametrize("token_value", ["", "nonsense", "baton_nope_" + "x" * 32])
def test_signing_in_with_a_bad_token_is_refused_and_sets_no_cookie(browser: TestClient, token_value: str) -> None:
    response = browser.post("/inbox/session", json={"token": token_value})
    assert response.status_code == (400 if not token_value else 401), response.text
    assert "set-cookie" not in response.headers
    assert browser.get("/inbox/session").status_code == 401


@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
                                          "text/plain"])
def test_signing_in_needs_a_json_body_so_a_cross_site_form_cannot(browser: TestClient, token: str,
                                                                   content_type: str) -> None:
    response = browser.post("/inbox/session", content=f"token={token}".encode(),
                            headers={"Content-Type": content_type})
    assert response.status_code == 415
    assert "set-cookie" not in response.headers


def test_signing_out_clears_the_cookie_and_needs_the_csrf_value(browser: TestClient, token: str) -> None:
    csrf = sign_in(browser, token).json()["csrf"]
    assert browser.post("/inbox/session/delete").status_code == 403
    assert browser.get("/api/conversations").status_code == 200  # still signed in
    response = browser.post("/inbox/session/delete", headers={"X-CSRF-Token": csrf})
    assert response.status_code == 200 and response.json() == {"signed_out": True}
    cookie = response.headers["set-cookie"].lower()
    assert cookie.startswith(f"{session.COOKIE}=") and ("max-age=0" in cookie or "expires=" in cookie)
    assert session.COOKIE not in browser.cookies
    assert browser.get("/api/conversations").status_code == 401
    assert browser.get("/inbox/session").status_code == 401


def test_a_revoked_agents_session_stops_working_at_once(browser: TestClient, token: str,
                                                        deployment: Deployment) -> None:
    sign_in(browser, token)
    assert browser.get("/api/conversations").status_code == 200
    revoke_agent(deployment.redis, workspace_of(deployment), "alex")
    assert browser.get("/api/conversations").status_code == 401
    assert browser.get("/inbox/session").status_code == 401


def test_a_bearer_token_call_needs_no_csrf_value_even_beside_a_session_cookie(
        browser: TestClient, token: str, deployment: Deployment) -> None:
    cid = waiting_conversation(browser, deployment)
    sam = agent_token(deployment, "sam")
    sign_in(browser, token)  # the cookie is alex's; the header, sam's, wins
    response = browser.post(f"/api/conversations/{cid}/assign", json={"assignee": "me"}, headers=sam)
    assert response.status_code == 200, response.text
    assert response.json()["conversation"]["owner"] == "agent:sam"
    bad = browser.get("/api/conversations", headers={"Authorization": "Bearer nonsense"})
    assert bad.status_code == 401  # a bad header is not rescued by the cookie
