"""Baton's connector conformance suite (gateway.testing) over the Telegram connector and the local fake Bot API:
updates posted as Telegram posts them, with the webhook's secret token."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from gateway.testing import Failure, Provider, ProviderRequest, Sent, WebhookConformance

from baton_telegram.connector import SECRET_HEADER, Telegram
from tests.fake_bot_api import BOT_TOKEN, FakeBotAPI

SECRET = "conformance-secret-0123456789"
CHAT_ID = 424242001
SEND_TIMEOUT = 3.0  # short, for the timed-out send's check; long enough to connect on a loaded machine


class TelegramProvider(Provider):
    connector = Telegram
    customer = str(CHAT_ID)
    signature_header = SECRET_HEADER
    signs_body = False  # a shared secret in a header, not a signature of the body
    reports_statuses = False  # the Bot API reports no delivery statuses
    invalid_settings = [({"bot_token": "not-a-token"}, "bot_token"), ({"secret_token": "short"}, "secret_token"),
                        ({"secret_token": "has spaces in it, not allowed"}, "secret_token"),
                        ({"api_base_url": "api.telegram.org"}, "api_base_url"), ({"send_timeout": 0}, "send_timeout")]

    def __init__(self, fake: FakeBotAPI) -> None:
        self.fake = fake

    def settings(self) -> dict[str, Any]:
        return {"bot_token": BOT_TOKEN, "secret_token": SECRET, "api_base_url": self.fake.base_url,
                "send_timeout": SEND_TIMEOUT}

    def unreachable_settings(self) -> dict[str, Any]:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        return {**self.settings(), "api_base_url": f"http://127.0.0.1:{port}"}

    def posted(self, update: dict[str, Any]) -> ProviderRequest:
        return ProviderRequest(json.dumps(update).encode(),
                               {"Content-Type": "application/json", SECRET_HEADER: SECRET})

    def inbound(self, url: str, provider_id: str, text: str) -> ProviderRequest:
        return self.posted(self.fake.update(CHAT_ID, text, update_id=int(provider_id)))

    def malformed(self, url: str) -> ProviderRequest:
        update = self.fake.update(CHAT_ID, "no chat id")
        del update["message"]["chat"]
        return self.posted(update)

    def fail_next_send(self, how: Failure) -> None:
        if how == "timeout":
            self.fake.hold_next(SEND_TIMEOUT + 1.5)
        elif how == "refused":
            self.fake.fail_next(400, "Bad Request: chat not found")
        elif how == "throttled":
            self.fake.fail_next(429, "Too Many Requests: retry after 3", retry_after=3)
        else:
            self.fake.fail_next(502, "Bad Gateway")

    def sent(self) -> list[Sent]:
        return [Sent(message.chat_id, message.text, f"{message.chat_id}:{message.message_id}")
                for message in self.fake.sent]


class TestTelegramConformance(WebhookConformance):
    @pytest.fixture
    def provider(self) -> Iterator[Provider]:
        with FakeBotAPI() as fake:
            yield TelegramProvider(fake)
