"""The OpenAPI document at /openapi.json: what the README and `baton serve` point API users at."""

from __future__ import annotations

from starlette.testclient import TestClient


def test_the_document_is_json(client: TestClient) -> None:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json()["openapi"].startswith("3.")
