"""The application's routing as a client meets it: a wrong method on a route is 405, not 404."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient


@pytest.mark.parametrize(("method", "path", "allowed"), [
    ("GET", "/webhooks/whatsapp", "POST"),
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


def test_pages_keep_their_security_headers(client: TestClient) -> None:
    for path in ("/inbox", "/demo", "/static/inbox.css"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert response.headers["x-frame-options"] == "DENY", path
