"""The OpenAPI document at /openapi.json, what the README and `baton serve` point API users at: JSON, valid, and
complete — every route, with its parameters, request body, and each response's content, errors included.
(tests/test_contract.py then checks the server keeps it.)"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
import yaml
from starlette.applications import Starlette
from starlette.testclient import TestClient

from gateway.config import parse_config
from gateway.deployment import Deployment
from gateway.web.app import create_app
from gateway.web.openapi import schemas
from tests.conftest import config_tree

Operation = tuple[str, str, dict[str, Any]]  # path, method, the operation


WHATSAPP = {"name": "whatsapp", "type": "twilio_whatsapp", "account_sid": "AC" + "0" * 32, "auth_token": "token",
            "from": "+14155550100"}


@pytest.fixture(scope="module")
def app() -> Starlette:
    tree = config_tree("openapi", channels=[{"name": "webchat", "type": "webchat"}, WHATSAPP])
    config = parse_config(yaml.safe_dump(tree))
    return create_app(Deployment.build(config, "redis://127.0.0.1:1", quiet=True))  # serving it needs no Redis


@pytest.fixture(scope="module")
def document(app: Starlette) -> dict[str, Any]:
    return TestClient(app).get("/openapi.json").json()  # type: ignore[no-any-return]


def operations(document: dict[str, Any]) -> Iterator[Operation]:
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            yield path, method, operation


def test_the_document_is_json(client: TestClient) -> None:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json()["openapi"].startswith("3.")


def test_every_routes_docstring_is_a_yaml_contract(app: Starlette) -> None:
    """Starlette leaves out, without a word, a route whose docstring is not a YAML mapping (GET /openapi.json
    once answered 500 on one that was not YAML at all)."""
    endpoints = schemas.get_endpoints(app.routes)
    assert len(endpoints) >= 20
    for endpoint in endpoints:
        where = f"{endpoint.http_method.upper()} {endpoint.path} ({endpoint.func.__qualname__})"
        contract = yaml.safe_load((endpoint.func.__doc__ or "").split("---")[-1])
        assert isinstance(contract, dict), where
        assert {"summary", "responses"} <= set(contract), where


def test_the_document_is_valid_openapi_with_no_value_left_empty(document: dict[str, Any]) -> None:
    schemathesis.openapi.from_dict(document).validate()
    # In a YAML flow mapping a comma ends the value: {description: Missing, invalid or expired} is a description of
    # "Missing" and two keys without values, which OpenAPI's schema lets pass inside a response.
    assert list(empty_values(document, "")) == []


def empty_values(node: Any, where: str) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if value is None:
                yield f"{where}/{key}"
            yield from empty_values(value, f"{where}/{key}")
    elif isinstance(node, list):
        for n, value in enumerate(node):
            yield from empty_values(value, f"{where}/{n}")


def test_every_reference_resolves(document: dict[str, Any]) -> None:
    for ref in references(document):
        node: Any = document
        for part in ref.removeprefix("#/").split("/"):
            assert isinstance(node, dict) and part in node, ref
            node = node[part]


def references(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for value in node.values():
            yield from references(value)
    elif isinstance(node, list):
        for value in node:
            yield from references(value)


def test_every_path_parameter_is_declared(document: dict[str, Any]) -> None:
    for path, method, operation in operations(document):
        declared = {resolve(document, p)["name"] for p in operation.get("parameters", [])
                    if resolve(document, p)["in"] == "path"}
        named = {part[1:-1] for part in path.split("/") if part.startswith("{")}
        assert declared == named, f"{method.upper()} {path}"


def test_only_methods_that_take_a_body_document_one(document: dict[str, Any]) -> None:
    """Starlette gives a route's one docstring to each of its methods: GET /api/ai-agent had PATCH's body."""
    for path, method, operation in operations(document):
        if method in ("get", "delete"):
            assert "requestBody" not in operation, f"{method.upper()} {path}"
        elif "requestBody" in operation:
            assert operation["requestBody"].get("required") is True, f"{method.upper()} {path}"


def test_every_response_says_what_its_body_is(document: dict[str, Any]) -> None:
    for path, method, operation in operations(document):
        for status, response in operation["responses"].items():
            response = resolve(document, response)
            where = f"{method.upper()} {path} {status}"
            assert response.get("description"), where
            assert response.get("content"), where
            assert all("schema" in media for media in response["content"].values()), where


def test_every_error_is_an_error_object(document: dict[str, Any]) -> None:
    """A 4xx, and a 5xx but /readyz's, is {"error": "…", …} as gateway.web.http renders it."""
    error = {"$ref": "#/components/schemas/Error"}
    for path, method, operation in operations(document):
        for status, response in operation["responses"].items():
            if int(status) >= 400 and path != "/readyz":
                content = resolve(document, response)["content"]
                assert content == {"application/json": {"schema": error}}, f"{method.upper()} {path} {status}"


def test_every_operation_with_credentials_documents_their_refusal(document: dict[str, Any]) -> None:
    schemes = set(document["components"]["securitySchemes"])
    for path, method, operation in operations(document):
        security = operation.get("security", [])
        for requirement in security:
            assert set(requirement) <= schemes, f"{method.upper()} {path}"
            refusal = {"403"} if path.startswith("/webhooks/") else {"401"}  # a provider's signature: 403
            if {} not in security:  # credentials are optional where {} is one of the choices
                assert refusal <= set(operation["responses"]), f"{method.upper()} {path}"
        if path.startswith("/api/"):
            assert operation.get("security") == [{"agentToken": []}], f"{method.upper()} {path}"


def resolve(document: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        target: Any = document
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def test_each_webhook_channel_is_documented_as_its_connector_declares_it(document: dict[str, Any]) -> None:
    """The core holds no provider's schema: the Twilio channel's operation and its signature scheme come from the
    connector's webhook_schema, under the channel's own path; the webchat channel takes no webhooks."""
    from connectors.twilio_whatsapp import TwilioWhatsApp

    declared = TwilioWhatsApp.webhook_schema
    assert declared is not None
    webhooks = {path: methods for path, methods in document["paths"].items() if path.startswith("/webhooks/")}
    assert set(webhooks) == {"/webhooks/whatsapp"}
    assert set(webhooks["/webhooks/whatsapp"]) == {"post"}  # no handshake: GET is not an operation
    post = webhooks["/webhooks/whatsapp"]["post"]
    assert post["requestBody"]["content"] == declared.request
    assert post["security"] == [{"twilioSignature": []}]
    assert document["components"]["securitySchemes"]["twilioSignature"] == declared.security
    assert set(post["responses"]["200"]["content"]) == {"text/xml"}


def test_a_connector_with_a_handshake_documents_its_get(make_deployment: Any, registered_connector: Any) -> None:
    deployment = make_deployment(channels=[{"name": "hooked", "type": "handshaking"}])
    document = TestClient(create_app(deployment)).get("/openapi.json").json()
    operations = document["paths"]["/webhooks/hooked"]
    assert set(operations) == {"get", "post"}
    assert [p["name"] for p in operations["get"]["parameters"]] == ["challenge"]
    assert document["components"]["securitySchemes"]["sharedSecret"]["name"] == "X-Secret"
    schemathesis.openapi.from_dict(document).validate()


@pytest.fixture
def registered_connector() -> Iterator[None]:
    from gateway.plugin_host import plugin_manager
    from tests.test_webhooks import HandshakingPlugin

    plugin = HandshakingPlugin()
    plugin_manager().register(plugin)
    try:
        yield
    finally:
        plugin_manager().unregister(plugin)
