"""gateway.plugin, the public API: exactly the names it lists, each a real object, a version a plugin can name, and
capabilities a connector declares by implementing an optional method."""

from __future__ import annotations

import re

import gateway.plugin as api
from connectors.twilio_whatsapp import TwilioWhatsApp
from connectors.webchat import Webchat
from gateway.plugin import Acknowledgement, WebhookConnector, WebhookRequest


def test_every_public_name_is_listed_and_real() -> None:
    public = {name for name in vars(api) if not name.startswith("_") and name != "annotations"}
    assert public == set(api.__all__)
    assert all(getattr(api, name) is not None for name in api.__all__)


def test_the_api_version_is_major_dot_minor() -> None:
    assert re.fullmatch(r"[1-9]\d*\.\d+", api.API_VERSION)


def test_the_delivery_states_are_the_normalised_ones_in_order_of_progress() -> None:
    assert api.DELIVERY_STATES == ("queued", "sent", "delivered", "read", "failed")


def test_a_connector_has_the_optional_capabilities_it_implements() -> None:
    class Verified(WebhookConnector):
        type = "verified"

        def verify(self, request: WebhookRequest) -> None: ...

        def parse(self, request: WebhookRequest) -> list:  # type: ignore[type-arg]
            return []

        def handshake(self, request: WebhookRequest) -> Acknowledgement:
            return Acknowledgement()

        def account(self) -> str:
            return "1098765432"

    class Routed(Verified):
        pass

    assert Verified.capabilities() == Routed.capabilities() == {"handshake", "account"}
    # WhatsApp templates by content_sid (issue 21); what became of a send of unknown outcome (issue 19)
    assert TwilioWhatsApp.capabilities() == {"templates", "lookup_send"}
    assert Webchat.capabilities() == frozenset()
