"""The website chat widget's channel. Its API lives in the gateway (gateway/web/webchat.py); messages reach the
visitor from the conversation's history over server-sent events, so nothing is sent through the connector."""

from __future__ import annotations

from collections.abc import Callable

from pydantic import Field

from gateway.plugin import ConnectorSettings, Widget, WidgetConnector, hookimpl

BATON_API_VERSION = "1.1"


class WebchatSettings(ConnectorSettings):
    title: str = "Chat with us"
    greeting: str = "Hi! How can we help you today?"
    #: Sites that may embed the widget (CORS); ["*"] for any. Visitor tokens travel in a header, not cookies.
    allowed_origins: list[str] = Field(default_factory=lambda: ["*"])


class Webchat(WidgetConnector):
    type = "webchat"
    Settings = WebchatSettings
    settings: WebchatSettings

    def widget(self) -> Widget:
        s = self.settings
        return Widget(title=s.title, greeting=s.greeting, allowed_origins=tuple(s.allowed_origins))

    def display_address(self, sender: str) -> str:
        return f"Visitor {sender[:6]}"


@hookimpl
def register_connectors(register: Callable[[type], None]) -> None:
    register(Webchat)
