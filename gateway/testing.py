"""The connector conformance suite: what Baton's core relies on a connector to do, checked against the connector
and a local fake of its provider, through a real gateway, store and worker. A pytest plugin: `pytest -p
gateway.testing` (or `addopts = "-p gateway.testing"`) adds the report of the checks at the end of the run.

A connector author describes their fake provider with a `Provider` and subclasses the suite:

    class TestTelegramConformance(WebhookConformance):
        @pytest.fixture
        def provider(self) -> Iterator[Provider]:
            with FakeBotAPI() as fake:
                yield TelegramProvider(fake)

Each `test_*` method is one check; its docstring says what it checks. The store is a real Redis-protocol server:
REDIS_URL when set, else an embedded Valkey for the session (override the `baton_redis_url` fixture to choose).
docs/plugins.md explains each check and how to write a Provider.
"""

from __future__ import annotations

import abc
import os
import sys
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl

import pytest
import yaml
from starlette.testclient import TestClient

from gateway.config import parse_config
from gateway.connector import (
    DELIVERY_STATES,
    Connector,
    ConnectorSettings,
    DeliveryState,
    DeliveryStatus,
    Inbound,
    Outbound,
    WebhookConnector,
    WebhookRequest,
    Widget,
    WidgetConnector,
)
from gateway.deployment import Deployment
from gateway.errors import ConfigError, SendFailed, SignatureInvalid
from gateway.plugin import API_VERSION, hookimpl
from gateway.plugin_host import connector_types, plugin_manager
from gateway.redis_server import EmbeddedValkey
from gateway.web.app import create_app
from gateway.work import worker

PUBLIC_URL = "https://baton.test"
CHANNEL = "conformance"
QUESTION, ANSWER = "What are your opening hours?", "We are open Monday to Friday, 9:00 to 17:00."
Failure = Literal["refused", "throttled", "server_error", "timeout"]


# --- what a connector author writes: their fake provider, described ----------------------------------------------

@dataclass(frozen=True)
class ProviderRequest:
    """An HTTP request as the provider makes it to the channel's webhook."""

    body: bytes
    headers: dict[str, str]
    query: dict[str, str] = field(default_factory=dict)
    method: str = "POST"

    def webhook_request(self, url: str) -> WebhookRequest:
        """As the gateway hands it to the connector (form bodies parsed as the gateway parses them)."""
        headers = {name.lower(): value for name, value in self.headers.items()}
        form = parse_qsl(self.body.decode(), keep_blank_values=True) \
            if headers.get("content-type", "").startswith("application/x-www-form-urlencoded") else []
        return WebhookRequest(self.method, url, headers, self.body, form, dict(self.query))


@dataclass(frozen=True)
class Sent:
    """One message the fake provider received from the connector, and the id it answered with."""

    recipient: str
    text: str
    provider_id: str = ""


class Provider(abc.ABC):
    """A connector's fake provider, as the conformance suite drives it. Implement the abstract methods; set the
    class attributes that differ from the defaults."""

    #: The connector class under test.
    connector: type[WebhookConnector]
    #: A customer's address on the channel, as the connector reports it in `Inbound.sender` and sends to it.
    customer: str
    #: The request header that carries the provider's signature (or shared secret).
    signature_header: str
    #: The signature covers the body: a body changed after signing is refused.
    signs_body: bool = True
    #: The provider reports delivery statuses (Twilio, Meta); False for those that do not (Telegram).
    reports_statuses: bool = True
    #: The normalised states the provider's statuses can say (Meta has no word for "queued": it answers "sent").
    reported_states: tuple[DeliveryState, ...] = DELIVERY_STATES
    #: The channel shows Baton's contact form natively rather than as text.
    renders_forms: bool = False
    #: Settings that must be refused, each with the setting the error must name: [({"token": ""}, "token")].
    invalid_settings: list[tuple[dict[str, Any], str]] = []

    @abc.abstractmethod
    def settings(self) -> dict[str, Any]:
        """The channel's settings (as in config.yaml) pointing the connector at this fake, with a send timeout of
        a second or two, so that the timeout check is quick."""

    def unreachable_settings(self) -> dict[str, Any] | None:
        """Settings pointing the connector at an address where nothing listens; None skips that check."""
        return None

    @abc.abstractmethod
    def inbound(self, url: str, provider_id: str, text: str) -> ProviderRequest:
        """The signed request the provider makes to `url` for a text message from `customer` with that id: a string
        of digits, so that a provider numbering its messages or updates can take it as their number; the
        connector reports it back as `Inbound.provider_id`."""

    def status(self, url: str, provider_id: str, state: DeliveryState) -> ProviderRequest:
        """The signed request the provider makes to report that the message `provider_id` reached `state` (in the
        provider's own words for it). Only when `reports_statuses`."""
        raise NotImplementedError

    @abc.abstractmethod
    def malformed(self, url: str) -> ProviderRequest:
        """A signed request the connector cannot make sense of (a required field missing)."""

    def unsigned(self, request: ProviderRequest) -> ProviderRequest:
        """The request without its signature."""
        headers = {k: v for k, v in request.headers.items() if k.lower() != self.signature_header.lower()}
        return replace(request, headers=headers)

    def forged(self, request: ProviderRequest) -> ProviderRequest:
        """The request with a wrong signature, of the right shape."""
        headers = {k: (_altered(v) if k.lower() == self.signature_header.lower() else v)
                   for k, v in request.headers.items()}
        return replace(request, headers=headers)

    @abc.abstractmethod
    def fail_next_send(self, how: Failure) -> None:
        """Make the fake answer the next send as the provider would: `refused` (a 4xx such as an invalid
        recipient), `throttled` (429), `server_error` (5xx), or `timeout` (the request arrives but the answer
        comes only after the connector's send timeout)."""

    @abc.abstractmethod
    def sent(self) -> list[Sent]:
        """What the fake received from the connector, oldest first."""


def _altered(signature: str) -> str:
    """`signature` with its last letter or digit changed: the same shape, no longer valid."""
    for index in range(len(signature) - 1, -1, -1):
        if signature[index].isalnum():
            other = "A" if signature[index] != "A" else "B"
            return signature[:index] + other + signature[index + 1:]
    return signature + "x"


# --- the deployment every check runs against ----------------------------------------------------------------------

@pytest.fixture(scope="session")
def baton_redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The Redis-protocol server the checks store into: REDIS_URL when set, else an embedded Valkey."""
    if os.environ.get("REDIS_URL"):
        yield os.environ["REDIS_URL"]
        return
    server = EmbeddedValkey(tmp_path_factory.mktemp("conformance-valkey"))
    try:
        yield server.start()
    finally:
        server.stop()


@dataclass
class Site:
    """A deployment with one workspace whose channel `conformance` is the connector under test, served in-process."""

    deployment: Deployment
    client: TestClient
    workspace_id: str

    @property
    def channel(self) -> Connector:
        return self.deployment.channels[CHANNEL].connector

    def url(self) -> str:
        return f"{PUBLIC_URL}/webhooks/{CHANNEL}"

    def post(self, request: ProviderRequest) -> Any:
        """The request, made to the channel's webhook; the response (an httpx.Response)."""
        return self.client.request(request.method, f"/webhooks/{CHANNEL}", content=request.body,
                                   headers=request.headers, params=request.query)

    def customer_messages(self) -> list[dict[str, Any]]:
        store = self.deployment.store
        return [dict(message) for conversation_id in store.conversation_ids(self.workspace_id, "all")
                for message in store.messages(self.workspace_id, conversation_id) if message["author"] == "customer"]

    def baton_messages(self) -> list[dict[str, Any]]:
        """What Baton said (the AI, agents, the system), with its delivery state."""
        store = self.deployment.store
        return [dict(message) for conversation_id in store.conversation_ids(self.workspace_id, "all")
                for message in store.messages(self.workspace_id, conversation_id)
                if message["author"] != "customer" and message.get("visibility", "public") == "public"]

    def work(self) -> None:
        """Everything a worker would do now: the AI's turns, deliveries, notifications."""
        worker.run_until_idle(self.deployment)


def config_tree(workspace_id: str, connector_type: str, settings: dict[str, Any]) -> dict[str, Any]:
    return {
        "queue": f"q-{workspace_id}", "secret": "conformance-secret-0123456789", "public_url": PUBLIC_URL,
        "workspaces": [{
            "id": workspace_id, "channels": [{"name": CHANNEL, "type": connector_type, **settings}],
            "ai_agent": {"model": "baton/knowledge", "knowledge": {"entries": [{"q": QUESTION, "a": ANSWER}]}},
        }],
    }


def build(redis_url: str, connector_type: str, settings: dict[str, Any], base_dir: Path) -> Deployment:
    workspace = f"c{uuid.uuid4().hex[:10]}"
    text = yaml.safe_dump(config_tree(workspace, connector_type, settings))
    return Deployment.build(parse_config(text, base_dir=base_dir), redis_url, quiet=True)


@pytest.fixture
def baton_connector_registered(request: pytest.FixtureRequest) -> Iterator[type[Connector]]:
    """The class under test, registered as a plugin for the test unless an installed plugin registers it."""
    cls: type[Connector] = request.getfixturevalue("connector_class")
    registered = connector_types().get(cls.type)
    if registered is cls:
        yield cls
        return
    if registered is not None:
        raise AssertionError(f"connector type {cls.type!r} is registered by {registered!r}, not by the class under "
                             f"test {cls!r}: uninstall the other plugin, or test the installed class")

    class Registration:
        @hookimpl
        def register_connectors(self, register: Any) -> None:
            register(cls)

    plugin = Registration()
    plugin_manager().register(plugin)
    try:
        yield cls
    finally:
        plugin_manager().unregister(plugin)


def _site(redis_url: str, cls: type[Connector], settings: dict[str, Any], base_dir: Path) -> Iterator[Site]:
    deployment = build(redis_url, cls.type, settings, base_dir)
    try:
        with TestClient(create_app(deployment)) as client:
            yield Site(deployment, client, deployment.config.workspaces[0].id)
    finally:
        deployment.close()


def outbound(recipient: str, text: str, n: int = 1, rich: dict[str, Any] | None = None) -> Outbound:
    return Outbound(channel=CHANNEL, recipient=recipient, text=text, message_id=f"1700000000000-{n}",
                    conversation_id="1", rich=rich)


def expect_failure(connector: Connector, message: Outbound) -> SendFailed:
    with pytest.raises(SendFailed) as failure:
        connector.send(message)
    return failure.value


# --- the checks -------------------------------------------------------------------------------------------------

class ConnectorChecks:
    """What every connector must do, whatever its kind."""

    @pytest.fixture(autouse=True)
    def _reported(self, request: pytest.FixtureRequest, connector_class: type[Connector]) -> None:
        """Each check's outcome goes to the report at the end of the run, under the connector it checked."""
        name = f"{connector_class.type} ({connector_class.__module__}.{connector_class.__qualname__})"
        request.node.user_properties.append(("baton_connector", name))

    def test_declares_the_api_version_it_needs(self, connector_class: type[Connector]) -> None:
        """its module declares BATON_API_VERSION, and this Baton provides it"""
        module = sys.modules[connector_class.__module__]
        needed = getattr(module, "BATON_API_VERSION", None)
        assert isinstance(needed, str), f"{module.__name__} declares no BATON_API_VERSION (e.g. {API_VERSION!r})"
        major, minor = (int(part) for part in needed.split("."))
        have_major, have_minor = (int(part) for part in API_VERSION.split("."))
        assert major == have_major and minor <= have_minor, f"needs API {needed}; this Baton provides {API_VERSION}"

    def test_settings_errors_name_the_setting(self, baton_connector_registered: type[Connector],
                                              baton_redis_url: str, tmp_path: Path, good_settings: dict[str, Any],
                                              invalid_settings: list[tuple[dict[str, Any], str]]) -> None:
        """an unknown, a missing or an invalid setting stops Baton with an error naming it in the YAML"""
        cls = baton_connector_registered
        assert issubclass(cls.Settings, ConnectorSettings), "Settings must subclass ConnectorSettings"
        cases = [({**good_settings, "no_such_setting": 1}, "no_such_setting")]
        for name, described in cls.Settings.model_fields.items():
            if described.is_required():
                key = described.alias or name
                cases.append(({k: v for k, v in good_settings.items() if k != key}, key))
        cases += [({**good_settings, **changed}, named) for changed, named in invalid_settings]
        for settings, named in cases:
            with pytest.raises(ConfigError) as refused:
                build(baton_redis_url, cls.type, settings, tmp_path).close()
            assert f"workspaces[0].channels[0].{named}" in refused.value.reason, refused.value.reason


class WebhookConformance(ConnectorChecks):
    """The checks for a connector whose provider calls its webhook (a `WebhookConnector`). Provide the `provider`
    fixture: a `Provider` over your fake provider."""

    @pytest.fixture
    def connector_class(self, provider: Provider) -> type[Connector]:
        return provider.connector

    @pytest.fixture
    def good_settings(self, provider: Provider) -> dict[str, Any]:
        return provider.settings()

    @pytest.fixture
    def invalid_settings(self, provider: Provider) -> list[tuple[dict[str, Any], str]]:
        return provider.invalid_settings

    @pytest.fixture
    def site(self, provider: Provider, baton_connector_registered: type[Connector], baton_redis_url: str,
             tmp_path: Path) -> Iterator[Site]:
        yield from _site(baton_redis_url, baton_connector_registered, provider.settings(), tmp_path)

    def test_declares_its_webhook_for_the_openapi_document(self, site: Site) -> None:
        """it declares its request schema and security scheme, and /openapi.json documents the channel with them"""
        declared = site.channel.webhook_schema  # type: ignore[attr-defined]
        assert declared is not None, "set webhook_schema = WebhookSchema(…) on the connector class"
        assert declared.request and declared.security_scheme and declared.security.get("type")
        document = site.client.get("/openapi.json").json()
        operation = document["paths"][f"/webhooks/{CHANNEL}"]["post"]
        assert operation["security"] == [{declared.security_scheme: []}]
        assert document["components"]["securitySchemes"][declared.security_scheme] == declared.security

    def test_a_valid_request_parses_into_normalised_items(self, site: Site, provider: Provider) -> None:
        """a signed request for a customer's text is verified and parses into one Inbound: channel, sender, the
        provider's id and the text"""
        request = provider.inbound(site.url(), "1001", QUESTION).webhook_request(site.url())
        connector = site.channel
        assert isinstance(connector, WebhookConnector)
        connector.verify(request)
        [item] = connector.parse(request)
        assert isinstance(item, Inbound), item
        assert (item.channel, item.sender, item.provider_id, item.text) == \
            (CHANNEL, provider.customer, "1001", QUESTION)
        assert all(isinstance(value, str) for value in (item.profile_name, item.phone, item.account))
        if item.phone:
            assert item.phone.startswith("+") and item.phone[1:].isdigit(), f"phone is not E.164: {item.phone!r}"

    def test_a_request_without_its_signature_is_refused(self, site: Site, provider: Provider) -> None:
        """a request without its signature is refused with 403, and nothing is recorded"""
        request = provider.unsigned(provider.inbound(site.url(), "1002", QUESTION))
        with pytest.raises(SignatureInvalid):
            site.channel.verify(request.webhook_request(site.url()))  # type: ignore[attr-defined]
        assert site.post(request).status_code == 403
        assert site.customer_messages() == []

    def test_a_request_with_a_wrong_signature_is_refused(self, site: Site, provider: Provider) -> None:
        """a request with a wrong signature is refused with 403, and nothing is recorded"""
        response = site.post(provider.forged(provider.inbound(site.url(), "1003", QUESTION)))
        assert response.status_code == 403, response.text
        assert site.customer_messages() == []

    def test_a_body_changed_after_signing_is_refused(self, site: Site, provider: Provider) -> None:
        """a body changed after it was signed is refused with 403 (for signatures that cover the body)"""
        if not provider.signs_body:
            pytest.skip("the provider's signature does not cover the body (a shared secret)")
        signed = provider.inbound(site.url(), "1004", QUESTION)
        tampered = replace(signed, body=signed.body.replace(b"opening", b"closing"))
        assert tampered.body != signed.body, "the body does not carry the text as sent: cannot tamper with it"
        assert site.post(tampered).status_code == 403
        assert site.customer_messages() == []

    def test_a_malformed_request_gets_a_4xx_with_a_reason(self, site: Site, provider: Provider) -> None:
        """a signed request the connector cannot parse gets a 4xx with a reason, never a 500"""
        response = site.post(provider.malformed(site.url()))
        assert 400 <= response.status_code < 500, response.text
        assert response.json()["error"]

    def test_a_retried_delivery_is_recorded_once_and_answered_once(self, site: Site, provider: Provider) -> None:
        """the same delivery twice (the provider's retry) is recorded once, and Baton answers it once, through send"""
        request = provider.inbound(site.url(), "1005", QUESTION)
        first, retry = site.post(request), site.post(request)
        assert first.status_code == retry.status_code == 200, (first.text, retry.text)
        assert [m["text"] for m in site.customer_messages()] == [QUESTION]
        site.work()
        assert [(s.recipient, s.text) for s in provider.sent()] == [(provider.customer, ANSWER)]
        assert [m.get("delivery") for m in site.baton_messages()] in [[state] for state in DELIVERY_STATES[:-1]]

    def test_statuses_map_to_the_normalised_states(self, site: Site, provider: Provider) -> None:
        """each of the provider's delivery statuses parses into the normalised state it means"""
        if not provider.reports_statuses:
            pytest.skip("the provider reports no delivery statuses")
        connector = site.channel
        assert isinstance(connector, WebhookConnector)
        for state in provider.reported_states:
            request = provider.status(site.url(), "1006", state).webhook_request(site.url())
            connector.verify(request)
            [item] = connector.parse(request)
            assert isinstance(item, DeliveryStatus), item
            assert (item.channel, item.provider_id, item.status) == (CHANNEL, "1006", state)

    def test_statuses_never_move_backwards(self, site: Site, provider: Provider) -> None:
        """statuses arriving out of order (read, then delivered, then sent) leave the message read"""
        if not provider.reports_statuses:
            pytest.skip("the provider reports no delivery statuses")
        assert site.post(provider.inbound(site.url(), "1007", QUESTION)).status_code == 200
        site.work()
        [sent] = provider.sent()
        assert sent.provider_id, "the fake provider must say which id it answered the send with"
        for state in ("read", "delivered", "sent"):
            assert site.post(provider.status(site.url(), sent.provider_id, state)).status_code == 200
        assert [m.get("delivery") for m in site.baton_messages()] == ["read"]

    def test_send_delivers_one_message_and_returns_the_providers_id(self, site: Site, provider: Provider) -> None:
        """send delivers one message to the customer and returns the provider's id for it and a normalised state"""
        result = site.channel.send(outbound(provider.customer, "Hello from the conformance suite"))
        assert result.provider_id and result.status in DELIVERY_STATES, result
        assert [(s.recipient, s.text) for s in provider.sent()] == \
            [(provider.customer, "Hello from the conformance suite")]

    def test_the_contact_form_reaches_the_customer(self, site: Site, provider: Provider) -> None:
        """Baton's contact form reaches a channel without forms as text asking for a phone number or an email"""
        if provider.renders_forms:
            pytest.skip("the channel shows the contact form natively")
        form = {"type": "contact_form", "fields": [{"name": n, "label": n.title()} for n in ("name", "phone", "email")]}
        site.channel.send(outbound(provider.customer, "Leave your details", rich=form))
        [sent] = provider.sent()
        assert "phone" in sent.text.lower() and "email" in sent.text.lower(), sent.text

    def test_a_refused_send_is_failed_not_retried(self, site: Site, provider: Provider) -> None:
        """a send the provider refuses (4xx) raises SendFailed(retryable=False, maybe_sent=False)"""
        provider.fail_next_send("refused")
        failure = expect_failure(site.channel, outbound(provider.customer, "refused"))
        assert (failure.retryable, failure.maybe_sent) == (False, False), failure.reason

    def test_a_throttled_send_is_retried(self, site: Site, provider: Provider) -> None:
        """a send the provider throttles (429) raises SendFailed(retryable=True, maybe_sent=False)"""
        provider.fail_next_send("throttled")
        failure = expect_failure(site.channel, outbound(provider.customer, "throttled"))
        assert (failure.retryable, failure.maybe_sent) == (True, False), failure.reason

    def test_a_server_error_is_retried(self, site: Site, provider: Provider) -> None:
        """a send the provider answers with a 5xx raises SendFailed(retryable=True, maybe_sent=False)"""
        provider.fail_next_send("server_error")
        failure = expect_failure(site.channel, outbound(provider.customer, "server error"))
        assert (failure.retryable, failure.maybe_sent) == (True, False), failure.reason

    def test_a_timed_out_send_may_have_been_sent(self, site: Site, provider: Provider) -> None:
        """a send whose answer never comes raises SendFailed(retryable=False, maybe_sent=True), in bounded time"""
        provider.fail_next_send("timeout")
        started = time.monotonic()
        failure = expect_failure(site.channel, outbound(provider.customer, "no answer"))
        assert (failure.retryable, failure.maybe_sent) == (False, True), failure.reason
        assert time.monotonic() - started < 60, "the connector's send has no timeout"

    def test_an_unreachable_provider_is_retried(self, provider: Provider, baton_connector_registered: type[Connector],
                                                baton_redis_url: str, tmp_path: Path) -> None:
        """a send to a provider that cannot be reached raises SendFailed(retryable=True, maybe_sent=False)"""
        settings = provider.unreachable_settings()
        if settings is None:
            pytest.skip("the Provider gives no unreachable_settings()")
        for site in _site(baton_redis_url, baton_connector_registered, settings, tmp_path):
            failure = expect_failure(site.channel, outbound(provider.customer, "unreachable"))
            assert (failure.retryable, failure.maybe_sent) == (True, False), failure.reason

    def test_sends_from_several_threads_at_once(self, site: Site, provider: Provider) -> None:
        """24 sends from 8 threads at once each reach the provider once, each with its own provider id"""
        results: dict[int, str] = {}
        errors: list[BaseException] = []

        def send_some(first: int) -> None:
            try:
                for n in range(first, 24, 8):
                    results[n] = site.channel.send(outbound(provider.customer, f"message {n}", n)).provider_id
            except BaseException as exc:  # noqa: BLE001 - reported below, with the others
                errors.append(exc)

        threads = [threading.Thread(target=send_some, args=(first,)) for first in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert not errors, errors
        assert len(set(results.values())) == 24, results
        assert sorted(s.text for s in provider.sent()) == sorted(f"message {n}" for n in range(24))


class WidgetConformance(ConnectorChecks):
    """The checks for a channel served by the gateway's own visitor API and widget (a `WidgetConnector`). Provide
    the `connector_class` and `good_settings` fixtures (and `invalid_settings`, if any)."""

    @pytest.fixture
    def invalid_settings(self) -> list[tuple[dict[str, Any], str]]:
        return []

    @pytest.fixture
    def site(self, good_settings: dict[str, Any], baton_connector_registered: type[Connector],
             baton_redis_url: str, tmp_path: Path) -> Iterator[Site]:
        yield from _site(baton_redis_url, baton_connector_registered, good_settings, tmp_path)

    def test_describes_its_widget(self, site: Site) -> None:
        """widget() gives the title, the greeting and the sites allowed to embed it, as the widget's config shows"""
        connector = site.channel
        assert isinstance(connector, WidgetConnector) and connector.sends is False
        widget = connector.widget()
        assert isinstance(widget, Widget) and widget.title and isinstance(widget.greeting, str)
        assert isinstance(widget.allowed_origins, tuple) and all(isinstance(o, str) for o in widget.allowed_origins)
        config = site.client.get(f"/webchat/{CHANNEL}/config").json()
        assert (config["title"], config["greeting"]) == (widget.title, widget.greeting)

    def test_a_visitor_without_a_session_is_refused(self, site: Site) -> None:
        """a message without a visitor session is refused with 401, and nothing is recorded"""
        response = site.client.post(f"/webchat/{CHANNEL}/messages", json={"text": QUESTION, "client_id": "c1"})
        assert response.status_code == 401
        assert site.customer_messages() == []

    def test_a_retried_message_is_recorded_once_and_answered_once(self, site: Site) -> None:
        """the same message twice (the widget's retry, same client_id) is recorded once and answered once, in the
        visitor's history"""
        token = site.client.post(f"/webchat/{CHANNEL}/sessions").json()["token"]
        headers = {"Authorization": f"Bearer {token}"}
        for _ in range(2):
            response = site.client.post(f"/webchat/{CHANNEL}/messages", json={"text": QUESTION, "client_id": "c1"},
                                        headers=headers)
            assert response.status_code in (200, 201), response.text
        site.work()
        history = site.client.get(f"/webchat/{CHANNEL}/messages", headers=headers).json()["messages"]
        assert [(m["author"], m["text"]) for m in history] == [("customer", QUESTION), ("ai", ANSWER)]

    def test_sends_nothing_itself(self, site: Site) -> None:
        """Baton's replies are served from the history, never sent through the connector"""
        with pytest.raises(SendFailed) as failure:
            site.channel.send(outbound("visitor", "hello"))
        assert failure.value.retryable is False


# --- the plugin: the report of the checks made ------------------------------------------------------------------

_results: dict[str, list[tuple[str, str, str]]] = defaultdict(list)  # connector -> [(check, outcome, detail)]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "conformance: a check of the Baton connector conformance suite")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if isinstance(item, pytest.Function) and item.cls and issubclass(item.cls, ConnectorChecks):
            item.add_marker(pytest.mark.conformance)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    connector = dict(report.user_properties).get("baton_connector")
    if connector is None or (report.when != "call" and not (report.failed or report.skipped)):
        return
    check = _check_of(report.nodeid)
    detail = str(report.longrepr[2]) if report.skipped and isinstance(report.longrepr, tuple) else ""
    _results[str(connector)].append((check, report.outcome, detail.removeprefix("Skipped: ")))


def _check_of(nodeid: str) -> str:
    name = nodeid.rsplit("::", 1)[-1]
    for cls in (WebhookConformance, WidgetConformance, ConnectorChecks):
        method = getattr(cls, name, None)
        if method is not None and method.__doc__:
            return " ".join(method.__doc__.split())
    return name


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for connector, results in sorted(_results.items()):
        counts = {outcome: sum(1 for _, o, _ in results if o == outcome) for outcome in ("passed", "failed", "skipped")}
        terminalreporter.write_sep("-", f"Baton conformance: {connector}: "
                                        + ", ".join(f"{n} {outcome}" for outcome, n in counts.items() if n))
        for check, outcome, detail in results:
            terminalreporter.write_line(f"  {outcome:8} {check}" + (f" ({detail})" if detail else ""))
