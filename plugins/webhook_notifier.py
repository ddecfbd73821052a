"""Posts every notification as signed JSON to a URL: X-Baton-Signature = sha256 HMAC of "<timestamp>.<body>"."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from pydantic import Field, field_validator

from gateway.plugin import Notifier, NotifierSettings, hookimpl

BATON_API_VERSION = "1.1"


class WebhookSettings(NotifierSettings):
    url: str
    secret: str = Field(min_length=16, description="shared HMAC key; at least 16 characters")
    timeout: float = Field(5.0, gt=0, le=30)
    events: list[str] = Field(default_factory=lambda: ["handover", "contact_captured", "contact_form_sent",
                                                       "no_human_in_time", "assigned", "taken_over",
                                                       "sla_breached"])

    @field_validator("url")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an absolute http(s) URL")
        return value


def sign(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


class WebhookNotifier(Notifier):
    type = "webhook"
    Settings = WebhookSettings

    def notify(self, notification: dict[str, Any]) -> None:
        if notification.get("type") not in self.settings.events:
            return
        body = json.dumps(notification, separators=(",", ":")).encode()
        timestamp = str(int(time.time()))
        request = urllib.request.Request(self.settings.url, data=body, method="POST", headers={
            "Content-Type": "application/json", "User-Agent": "Baton-Webhook/1",
            "X-Baton-Timestamp": timestamp, "X-Baton-Signature": sign(self.settings.secret, timestamp, body)})
        try:
            with urllib.request.urlopen(request, timeout=self.settings.timeout) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            raise RuntimeError(f"webhook {self.settings.url} answered {exc.code}") from exc


@hookimpl
def register_notifiers(register: Callable[[type], None]) -> None:
    register(WebhookNotifier)
