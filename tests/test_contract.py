"""The HTTP contract, checked by a fuzzer: schemathesis generates requests for every operation of /openapi.json (the
documented examples, boundary and invalid values, then random ones) and sends them, with real credentials, to a live
`baton serve` (a gateway and a worker) on the suite's Redis. Every answer must be documented (status, content type,
body schema) and none a 5xx.

pytest collects one test per operation before any fixture runs, so the operations come from the app's
/openapi.json read over ASGI at import (serving it touches no Redis); `test_the_live_server_serves_this_document`
checks that the live server answers the same document.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import schemathesis
import yaml
from hypothesis import HealthCheck, settings
from starlette.testclient import TestClient
from twilio.request_validator import RequestValidator

from gateway.config import parse_config
from gateway.deployment import Deployment
from gateway.web.app import create_app
from tests.conftest import Visitor, agent_token, config_tree, free_port

AUTH_TOKEN = "contract-auth-token-0123456789"
EXAMPLES = 12  # random examples per operation, after the documented, boundary and invalid ones
STREAM_READ_S = 1.0  # an event stream is read until its first event, or this long without a byte

pytestmark = pytest.mark.slow  # minutes of fuzzing: `pytest -m slow` and .ci/run


def deployment_tree(workspace: str) -> dict[str, Any]:
    """Channels named as the document's examples, so that its examples reach a real channel and conversation."""
    return config_tree(
        workspace,
        channels=[{"name": "webchat", "type": "webchat"},
                  {"name": "whatsapp", "type": "twilio_whatsapp", "account_sid": "AC" + "0" * 32,
                   "auth_token": AUTH_TOKEN, "from": "whatsapp:+14155550100",
                   "api_base_url": "http://127.0.0.1:9"}],
        handover={"no_human_timeout": 0.2},
        # One agent and one visitor send all of the fuzzer's requests.
        limits={"agent_requests": {"count": 1_000_000, "seconds": 60},
                "visitor_messages": {"count": 1_000_000, "seconds": 60}})


def _document() -> dict[str, Any]:
    config = parse_config(yaml.safe_dump(deployment_tree("contract")))
    app = create_app(Deployment.build(config, "redis://127.0.0.1:1", quiet=True))
    response = TestClient(app).get("/openapi.json")  # not as a context manager: no lifespan, no Redis
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


DOCUMENT = _document()
schema = schemathesis.openapi.from_dict(DOCUMENT, config=schemathesis.Config.from_dict({
    # The credentials are the test's (see `credentials`): the fuzzer generates none of its own.
    "generation": {"with-security-parameters": False, "max-examples": EXAMPLES},
    # The event streams are fuzzed like the rest, but read only up to their first event (checked against the
    # documented event schema) or until they stay silent for STREAM_READ_S: they never end by themselves.
    "max-stream-events": 1,
    "phases": {"stateful": {"enabled": False}},
    "operations": [{
        # A stream that has nothing to send is read until STREAM_READ_S passes: fewer random tries there.
        "include-path-regex": "/events$",
        "generation": {"max-examples": 4},
    }, {
        # Not ready is /readyz's documented answer, and no worker runs here to make it ready.
        "include-path": "/readyz",
        "checks": {"not_a_server_error": {"expected-statuses": ["2xx", "3xx", "4xx", "503"]}},
    }, {
        # The form's phone and email are checked by phonenumbers and email-validator, which no JSON schema can
        # say: a 400 for a well-formed but impossible number is the documented answer, not a rejected valid body.
        "include-path": "/webchat/{channel}/contact",
        "checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", "400", "401", "403", "404", "409"]}},
    }, {
        # A contact's phone and email are checked by phonenumbers and email-validator (as the contact form's), and
        # an edit that would leave a contact with nothing is refused: 400 with the reason, which no schema says.
        "include-path": "/api/contacts/{id}",
        "checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", "400", "401", "404", "409"]}},
    }, {
        # An article needs a title and some text once Markdown is read, and a URL must be http(s): 400 with the
        # reason for what no schema says (a title of spaces, a body of markup only, "0000" as a URL).
        # A body over the 2 MB an import may send is refused before it is read: 413, as every body limit is.
        "include-path-regex": "^/api/knowledge",
        "checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", "400", "401", "403", "404", "409"]},
                   "negative_data_rejection": {"expected-statuses": ["400", "401", "403", "404", "413", "422"]}},
    }, {
        # A snooze `until` a time already passed is refused with the reason: "the past" is no schema's.
        "include-path": "/api/conversations/{id}/snooze",
        "checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", "400", "401", "404", "409"]}},
    }, {
        # A query of only punctuation or symbols holds no word to search for: a 400 with the reason is the documented
        # answer ("what is a word" is Unicode's, which no JSON schema pattern says portably).
        "include-path": "/api/search",
        "checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", "400", "401"]}},
    }, {
        # `from` after `to`, a range over two years, a channel neither configured nor in the figures: no JSON schema
        # says these, and a 400 with the reason is the documented answer.
        "include-path": "/api/reports",
        "checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", "400", "401", "404"]}},
    }],
}))
exercised: Counter[str] = Counter()


@dataclass
class Site:
    url: str
    deployment: Deployment
    client: httpx.Client
    agent: str  # an admin agent's API token
    visitor: str  # the session token of the visitor whose conversation is "1" and has its contact form out
    session: str  # an inbox session cookie of the agent
    conversation: str = "1"

    def open_conversation(self) -> str:
        """An open conversation: the last one handed out while it is open, else a new visitor's."""
        workspace = self.deployment.config.workspaces[0].id
        if self.deployment.store.conversation(workspace, self.conversation)["status"] != "open":
            self.conversation = Visitor(self.client, "webchat").say("hello")["conversation"]  # type: ignore[arg-type]
        return self.conversation


@pytest.fixture(scope="module")
def site(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    directory = tmp_path_factory.mktemp("contract")
    tree = deployment_tree(f"t{uuid.uuid4().hex[:10]}")
    config_file = directory / "config.yaml"
    config_file.write_text(yaml.safe_dump(tree))
    deployment = Deployment.build(parse_config(yaml.safe_dump(tree), base_dir=directory), redis_url, quiet=True)
    port = free_port()
    with (directory / "serve.log").open("w") as log:
        serve = subprocess.Popen([sys.executable, "-m", "gateway.cli", "serve", "--config", str(config_file),
                                  "--port", str(port), "--redis-url", redis_url, "--gateways", "1", "--workers", "1"],
                                 cwd=directory, env={k: v for k, v in os.environ.items() if k != "REDIS_URL"},
                                 stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait(lambda: _ready(url), "baton serve and its worker", 90, serve, directory)
        with httpx.Client(base_url=url) as client:
            agent = agent_token(deployment, "alex", admin=True)["Authorization"].removeprefix("Bearer ")
            agent_token(deployment, "sam")
            visitor = _visitor_awaiting_the_form(client, serve, directory)
            signed_in = client.post("/inbox/session", json={"token": agent})
            assert signed_in.status_code == 200, signed_in.text
            yield Site(url, deployment, client, agent, visitor.token, signed_in.cookies["baton_session"])
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.wait(60)
        deployment.close()


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def _wait(condition: Any, what: str, timeout: float, serve: subprocess.Popen[bytes], directory: Any) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        log = (directory / "serve.log").read_text()
        assert serve.poll() is None, f"baton serve exited: {log}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}: {log}"
        time.sleep(0.1)


def _visitor_awaiting_the_form(client: httpx.Client, serve: subprocess.Popen[bytes], directory: Any) -> Visitor:
    """Conversation "1": the AI answered, the visitor asked for a person, nobody came (the worker's 0.2 s timer), and
    the contact form is out."""
    visitor = Visitor(client, "webchat")  # type: ignore[arg-type]
    assert visitor.say("What are your opening hours?")["conversation"] == "1"
    _wait(lambda: visitor.texts("ai"), "the AI's answer", 30, serve, directory)
    visitor.say("I want to talk to a human")
    _wait(lambda: visitor.history()["conversation"]["form_pending"], "the contact form", 30, serve, directory)
    return visitor


def credentials(case: schemathesis.Case, site: Site) -> dict[str, str]:
    """The headers that carry the credentials of the security scheme the operation documents."""
    headers: dict[str, str] = {}
    for requirement in _operation(case).get("security", []):
        for scheme in requirement:
            if scheme == "agentToken":
                headers["Authorization"] = f"Bearer {site.agent}"
            elif scheme == "visitorToken":
                headers["Authorization"] = f"Bearer {site.visitor}"
            elif scheme == "inboxSession":
                headers["Cookie"] = f"baton_session={site.session}"
            elif scheme == "twilioSignature":
                headers["X-Twilio-Signature"] = twilio_signature(case, site)
            else:
                raise AssertionError(f"{case.operation.label}: no credentials for security scheme {scheme!r}")
    return headers


def _operation(case: schemathesis.Case) -> dict[str, Any]:
    return DOCUMENT["paths"][case.operation.path][case.operation.method.lower()]  # type: ignore[no-any-return]


def twilio_signature(case: schemathesis.Case, site: Site) -> str:
    """Twilio's signature of the request as it will be sent, so that the body reaches the connector's parser."""
    params = case.body if isinstance(case.body, dict) else {}
    url = f"{site.url}{case.formatted_path}"
    return RequestValidator(AUTH_TOKEN).compute_signature(url, {k: str(v) for k, v in params.items()})


@schema.parametrize()
@settings(derandomize=True, database=None, deadline=None, suppress_health_check=list(HealthCheck))
def test_api(case: schemathesis.Case, site: Site) -> None:
    exercised[case.operation.label] += 1
    if case.operation.path.startswith("/api/conversations/{id}") and case.path_parameters["id"] == "1":
        # The documented example stands for a conversation an agent can act on: once the fuzzer has closed "1",
        # the example goes on reaching an open one, so replies and assignments are tried on one too.
        case.path_parameters["id"] = site.open_conversation()
    timeout = STREAM_READ_S if _streams(case) else 10
    case.call_and_validate(base_url=site.url, headers=credentials(case, site), timeout=timeout)


def _streams(case: schemathesis.Case) -> bool:
    responses = _operation(case)["responses"]
    return any("text/event-stream" in r.get("content", {}) for r in responses.values())


def test_the_live_server_serves_this_document(site: Site) -> None:
    response = httpx.get(f"{site.url}/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == DOCUMENT


def test_every_operation_was_exercised() -> None:
    """Runs after test_api (pytest keeps a module's order): no operation went untested."""
    operations = {f"{method.upper()} {path}" for path, methods in DOCUMENT["paths"].items() for method in methods}
    assert operations - set(exercised) == set(), "run the whole module: these operations got no request"

