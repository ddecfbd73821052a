"""The OpenAPI document at /openapi.json: what the README and `baton serve` point API users at."""

from __future__ import annotations

from starlette.testclient import TestClient


def test_the_document_is_json(client: TestClient) -> None:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json()["openapi"].startswith("3.")


def test_only_methods_that_take_a_body_document_one(client: TestClient) -> None:
    """Starlette gives a route's one docstring to each of its methods: GET /api/ai-agent had PATCH's body."""
    for path, operations in client.get("/openapi.json").json()["paths"].items():
        for method, operation in operations.items():
            if method in ("get", "delete"):
                assert "requestBody" not in operation, f"{method.upper()} {path}"
