"""The connector conformance suite (gateway.testing) over the bundled connectors: Twilio WhatsApp against the local
fake of Twilio's REST API and requests signed as Twilio signs them, WhatsApp Cloud against the local fake of Meta's
Graph API and webhooks signed as Meta signs them, and the webchat widget's channel."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
from twilio.request_validator import RequestValidator

from connectors.twilio_whatsapp import TwilioWhatsApp
from connectors.webchat import Webchat
from connectors.whatsapp_cloud import WhatsAppCloud
from gateway.plugin import DeliveryState
from gateway.testing import Failure, Provider, ProviderRequest, Sent, WebhookConformance, WidgetConformance
from tests import fake_meta
from tests.fake_meta import FakeMeta
from tests.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio

BUSINESS = "whatsapp:+14155238886"
#: Twilio's word for each normalised state (it has several for some: "undelivered" is failed too).
TWILIO_STATUS = {"queued": "queued", "sent": "sent", "delivered": "delivered", "read": "read", "failed": "undelivered"}
SEND_TIMEOUT = 3.0  # short, for the timed-out send's check; long enough to connect on a loaded machine


class TwilioProvider(Provider):
    connector = TwilioWhatsApp
    customer = "whatsapp:+14155550100"
    signature_header = "X-Twilio-Signature"
    invalid_settings = [({"account_sid": "AC123"}, "account_sid"), ({"from": "14155238886"}, "from"),
                        ({"api_base_url": "api.twilio.com"}, "api_base_url"), ({"send_timeout": 0}, "send_timeout")]

    def __init__(self, fake: FakeTwilio) -> None:
        self.fake = fake

    def settings(self) -> dict[str, Any]:
        return {"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN, "from": BUSINESS,
                "api_base_url": self.fake.base_url, "send_timeout": SEND_TIMEOUT}

    def unreachable_settings(self) -> dict[str, Any]:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        return {**self.settings(), "api_base_url": f"http://127.0.0.1:{port}"}

    def signed(self, url: str, form: dict[str, str]) -> ProviderRequest:
        signature = RequestValidator(AUTH_TOKEN).compute_signature(url, form)
        return ProviderRequest(urlencode(form).encode(), {
            "Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature})

    def inbound(self, url: str, provider_id: str, text: str) -> ProviderRequest:
        return self.signed(url, {"MessageSid": provider_id, "AccountSid": ACCOUNT_SID, "From": self.customer,
                                 "To": BUSINESS, "Body": text, "NumMedia": "0", "ProfileName": "Maria"})

    def status(self, url: str, provider_id: str, state: DeliveryState) -> ProviderRequest:
        return self.signed(url, {"MessageSid": provider_id, "MessageStatus": TWILIO_STATUS[state],
                                 "AccountSid": ACCOUNT_SID})

    def malformed(self, url: str) -> ProviderRequest:
        return self.signed(url, {"AccountSid": ACCOUNT_SID, "From": self.customer, "Body": "no MessageSid"})

    def fail_next_send(self, how: Failure) -> None:
        if how == "timeout":
            self.fake.hold_next(SEND_TIMEOUT + 1.5)
        else:
            status, code = {"refused": (400, 21211), "throttled": (429, 20429), "server_error": (500, 20500)}[how]
            self.fake.fail_next(status, code, f"a {how} answer")

    def sent(self) -> list[Sent]:
        return [Sent(form["To"][0], form.get("Body", [""])[0], sid) for form, sid in self.fake.created]


class TestTwilioWhatsApp(WebhookConformance):
    @pytest.fixture
    def provider(self) -> Iterator[Provider]:
        with FakeTwilio() as fake:
            yield TwilioProvider(fake)


class MetaProvider(Provider):
    connector = WhatsAppCloud
    customer = fake_meta.CUSTOMER
    signature_header = "X-Hub-Signature-256"
    reported_states = ("sent", "delivered", "read", "failed")  # Meta has no "queued": what it takes is "sent"
    invalid_settings = [({"phone_number_id": "+1 555"}, "phone_number_id"), ({"waba_id": "abc"}, "waba_id"),
                        ({"api_base_url": "graph.facebook.com"}, "api_base_url"), ({"send_timeout": 0}, "send_timeout"),
                        ({"templates": {"follow_up": {"language": "en"}}}, "templates.follow_up.name"),
                        ({"enabled": True, "app_secret": ""}, "enabled")]

    def __init__(self, fake: FakeMeta) -> None:
        self.fake = fake

    def settings(self) -> dict[str, Any]:
        return {"phone_number_id": fake_meta.PHONE_NUMBER_ID, "access_token": fake_meta.ACCESS_TOKEN,
                "app_secret": fake_meta.APP_SECRET, "verify_token": fake_meta.VERIFY_TOKEN,
                "api_base_url": self.fake.base_url, "send_timeout": SEND_TIMEOUT}

    def unreachable_settings(self) -> dict[str, Any]:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        return {**self.settings(), "api_base_url": f"http://127.0.0.1:{port}/v21.0"}

    def signed(self, payload: dict[str, Any]) -> ProviderRequest:
        body = json.dumps(payload).encode()
        return ProviderRequest(body, fake_meta.signed_headers(body))

    def inbound(self, url: str, provider_id: str, text: str) -> ProviderRequest:
        return self.signed(fake_meta.webhook(fake_meta.change([fake_meta.text(text, provider_id)])))

    def status(self, url: str, provider_id: str, state: DeliveryState) -> ProviderRequest:
        errors = [{"code": 131026, "title": "Message undeliverable"}] if state == "failed" else None
        return self.signed(fake_meta.webhook(fake_meta.change(statuses=[fake_meta.status(provider_id, state, errors)])))

    def malformed(self, url: str) -> ProviderRequest:
        message = fake_meta.text("no id")
        del message["id"]
        return self.signed(fake_meta.webhook(fake_meta.change([message])))

    def fail_next_send(self, how: Failure) -> None:
        if how == "timeout":
            self.fake.hold_next(SEND_TIMEOUT + 1.5)
        else:
            status, code = {"refused": (400, 131026), "throttled": (429, 130429), "server_error": (500, 131000)}[how]
            self.fake.fail_next(status, code, f"a {how} answer")

    def sent(self) -> list[Sent]:
        return [Sent(body.get("to", ""), body.get("text", {}).get("body", ""), wamid)
                for _, body, wamid in self.fake.sent]


class TestWhatsAppCloud(WebhookConformance):
    @pytest.fixture
    def provider(self) -> Iterator[Provider]:
        with FakeMeta() as fake:
            yield MetaProvider(fake)


class TestWebchat(WidgetConformance):
    @pytest.fixture
    def connector_class(self) -> type[Webchat]:
        return Webchat

    @pytest.fixture
    def good_settings(self) -> dict[str, Any]:
        return {"title": "Chat with Lumi", "allowed_origins": ["https://shop.example.com"]}

    @pytest.fixture
    def invalid_settings(self) -> list[tuple[dict[str, Any], str]]:
        return [({"allowed_origins": "https://shop.example.com"}, "allowed_origins"), ({"title": ["x"]}, "title")]
