"""The website chat widget's channel. Its API lives in the gateway (gateway/webchat.py); messages reach
the visitor from the conversation's history over server-sent events, so sending is only recording."""

from __future__ import annotations

from pydantic import Field

from gateway import hookimpl
from gateway.connector import Connector, ConnectorSettings, Outbound, SendResult


class WebchatSettings(ConnectorSettings):
    title: str = "Chat with us"
    greeting: str = "Hi! How can we help you today?"
    #: Sites that may embed the widget (CORS); ["*"] for any. Visitor tokens travel in a header, not cookies.
    allowed_origins: list[str] = Field(default_factory=lambda: ["*"])


class Webchat(Connector):
    type = "webchat"
    Settings = WebchatSettings
    has_webhook = False

    def display_address(self, sender: str) -> str:
        return f"Visitor {sender[:6]}"

    def send(self, message: Outbound) -> SendResult:
        return SendResult(provider_id="", status="delivered")


@hookimpl
def register_connectors(register):  # type: ignore[no-untyped-def]
    register(Webchat)
