"""The application's routing as a client meets it: a wrong method on a route is 405 (not 404) and Allow names
every method of the path."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from gateway.deployment import Deployment
from tests.conftest import chat_channel


@pytest.mark.parametrize(("method", "path", "allowed"), [
    ("POST", "/healthz", "GET"),
    ("DELETE", "/readyz", "GET"),
    ("POST", "/openapi.json", "GET"),
    ("DELETE", "/api/conversations", "GET"),
    ("GET", "/inbox/session/delete", "POST"),
])
def test_a_wrong_method_is_405_with_the_allowed_ones(client: TestClient, method: str, path: str,
                                                       allowed: str) -> None:
    response = client.request(method, path)
    assert response.status_code == 405, response.text
    assert allowed in response.headers["allow"]
    assert response.json() == {"error": "Method Not Allowed"}


def test_a_webhook_of_no_channel_is_404_naming_it(client: TestClient) -> None:
    """Any method reaches a channel's webhook (Meta verifies with a GET); a name no channel has is a 404 that says so
    (a webhook channel's own 405 is in test_urls, against a served WhatsApp channel)."""
    for method in ("GET", "POST"):
        response = client.request(method, "/webhooks/nosuch")
        assert response.status_code == 404, response.text
        assert response.json() == {"error": "no channel named 'nosuch'"}


def test_pages_keep_their_security_headers(client: TestClient) -> None:
    for path in ("/inbox", "/demo", "/static/inbox.css"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert response.headers["x-frame-options"] == "DENY", path


@pytest.mark.parametrize(("path", "allowed"), [
    ("/api/ai-agent", {"GET", "HEAD", "PATCH"}),
    ("/inbox/session", {"GET", "HEAD", "POST"}),
    ("/webchat/{channel}/messages", {"GET", "HEAD", "POST"}),
])
def test_a_path_with_a_handler_per_method_names_them_all_in_allow(client: TestClient, deployment: Deployment,
                                                                  path: str, allowed: set[str]) -> None:
    response = client.delete(path.format(channel=chat_channel(deployment)))
    assert response.status_code == 405
    assert set(response.headers["allow"].split(", ")) == allowed
