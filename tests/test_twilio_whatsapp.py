"""The Twilio WhatsApp connector, against signed requests and a local fake of Twilio's REST API."""

from __future__ import annotations

import base64
import socket
import threading
from typing import Any

import pluggy
import pytest
from pydantic import ValidationError
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse

from connectors import twilio_whatsapp
from connectors.twilio_whatsapp import TwilioWhatsApp
from gateway import hookspecs
from gateway.connector import DeliveryStatus, Inbound, Media, Outbound, WebhookRequest
from gateway.errors import BadRequest, SendFailed, SignatureInvalid
from tests.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio

URL = "https://baton.example.com/webhooks/whatsapp"
SENDER = "whatsapp:+14155550100"
OUR_NUMBER = "whatsapp:+14155238886"
MESSAGE_SID = "SM" + "1" * 32


def connector(**settings: Any) -> TwilioWhatsApp:
    defaults = {"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN, "from": "+14155238886"}
    return TwilioWhatsApp("whatsapp", TwilioWhatsApp.Settings.model_validate(defaults | settings))


def inbound_form(**fields: str) -> list[tuple[str, str]]:
    base = {"MessageSid": MESSAGE_SID, "AccountSid": ACCOUNT_SID, "From": SENDER, "To": OUR_NUMBER}
    return list((base | fields).items())


def webhook(
    form: list[tuple[str, str]], *, token: str = AUTH_TOKEN, url: str = URL, **headers: str
) -> WebhookRequest:
    """A request as Twilio would send it, signed over `url` with `token`."""
    params: dict[str, Any] = {}
    for name, value in form:
        params.setdefault(name, []).append(value)
    signature = RequestValidator(token).compute_signature(url, _MultiDict(params))
    return request(form, **{"x-twilio-signature": signature} | headers)


def request(form: list[tuple[str, str]], url: str = URL, **headers: str) -> WebhookRequest:
    return WebhookRequest("POST", url, headers, b"", form, {})


class _MultiDict(dict[str, list[str]]):
    def getall(self, name: str) -> list[str]:
        return self[name]


def outbound(text: str = "Hello!", rich: dict[str, Any] | None = None) -> Outbound:
    return Outbound("whatsapp", SENDER, text, "msg-1", "conv-1", rich)


# Signatures


def test_signed_request_is_accepted() -> None:
    connector().verify(webhook(inbound_form(Body="hi")))


def test_sdk_test_vector_validates() -> None:
    form = [
        ("CallSid", "CA1234567890ABCDE"),
        ("Caller", "+14158675309"),
        ("Digits", "1234"),
        ("From", "+14158675309"),
        ("To", "+18005551212"),
    ]
    req = request(
        form,
        url="https://mycompany.com/myapp.php?foo=1&bar=2",
        **{"x-twilio-signature": "RSOYDt4T1cUTdK1PDd93/VVr8B8="},
    )
    connector(auth_token="12345").verify(req)


def test_unknown_fields_are_part_of_the_signature() -> None:
    connector().verify(webhook(inbound_form(Body="hi", SomethingTwilioAddedLater="x")))


def test_repeated_keys_are_all_signed() -> None:
    form = inbound_form(Body="hi") + [("Body", "again")]
    connector().verify(webhook(form))
    signed_over_one = webhook(inbound_form(Body="hi"))
    with pytest.raises(SignatureInvalid):
        connector().verify(request(form, **signed_over_one.headers))


def test_wrong_token_is_rejected() -> None:
    with pytest.raises(SignatureInvalid, match="does not match"):
        connector().verify(webhook(inbound_form(Body="hi"), token="someone-elses-token"))


def test_wrong_url_is_rejected() -> None:
    signed = webhook(inbound_form(Body="hi"), url="https://attacker.example.com/webhooks/whatsapp")
    with pytest.raises(SignatureInvalid, match="does not match"):
        connector().verify(request(signed.form, **signed.headers))


def test_missing_signature_is_rejected() -> None:
    with pytest.raises(SignatureInvalid, match="missing X-Twilio-Signature header"):
        connector().verify(request(inbound_form(Body="hi")))


def test_tampered_param_is_rejected() -> None:
    signed = webhook(inbound_form(Body="hi"))
    tampered = [(name, "send me money" if name == "Body" else value) for name, value in signed.form]
    with pytest.raises(SignatureInvalid, match="does not match"):
        connector().verify(request(tampered, **signed.headers))


def test_nothing_verifies_without_an_auth_token() -> None:
    signed_with_empty_key = webhook(inbound_form(Body="hi"), token="")
    with pytest.raises(SignatureInvalid, match="no auth_token"):
        connector(auth_token="").verify(signed_with_empty_key)


def test_registers_through_the_plugin_hook() -> None:
    manager = pluggy.PluginManager("baton")
    manager.add_hookspecs(hookspecs)
    manager.register(twilio_whatsapp)
    registered: list[type] = []
    manager.hook.register_connectors(register=registered.append)
    assert registered == [TwilioWhatsApp]


# Parsing


def test_parse_text() -> None:
    req = webhook(
        inbound_form(Body="Where is my order?", ProfileName="Ada", WaId="14155550100"),
        **{"i-twilio-idempotency-token": "tok-1"},
    )
    assert connector().parse(req) == [
        Inbound(
            channel="whatsapp",
            sender=SENDER,
            provider_id=MESSAGE_SID,
            text="Where is my order?",
            profile_name="Ada",
            extra={
                "to": OUR_NUMBER,
                "wa_id": "14155550100",
                "account_sid": ACCOUNT_SID,
                "idempotency_token": "tok-1",
            },
            phone="+14155550100",
        )
    ]


def test_parse_media() -> None:
    form = inbound_form(
        Body="",
        NumMedia="2",
        MediaUrl0="https://api.twilio.com/m0",
        MediaContentType0="image/jpeg",
        MediaUrl1="https://api.twilio.com/m1",
        MediaContentType1="application/pdf",
    )
    [message] = connector().parse(webhook(form))
    assert isinstance(message, Inbound)
    assert message.text == ""
    assert message.media == (
        Media("https://api.twilio.com/m0", "image/jpeg"),
        Media("https://api.twilio.com/m1", "application/pdf"),
    )


def test_parse_button_reply() -> None:
    form = inbound_form(Body="", ButtonText="Talk to a human", ButtonPayload="handover")
    [message] = connector().parse(webhook(form))
    assert isinstance(message, Inbound)
    assert message.text == "Talk to a human"
    assert message.extra["button_text"] == "Talk to a human"
    assert message.extra["button_payload"] == "handover"


def test_parse_location() -> None:
    form = inbound_form(Latitude="37.7879", Longitude="-122.3937", Label="Twilio HQ", Address="101 Spear St")
    [message] = connector().parse(webhook(form))
    assert isinstance(message, Inbound)
    assert message.text == "📍 Location: 37.7879,-122.3937 (Twilio HQ, 101 Spear St)"
    assert {k: message.extra[k] for k in ("latitude", "longitude", "label", "address")} == {
        "latitude": "37.7879",
        "longitude": "-122.3937",
        "label": "Twilio HQ",
        "address": "101 Spear St",
    }


def test_parse_referral_and_reply_context() -> None:
    form = inbound_form(
        Body="I saw your ad",
        ReferralSourceUrl="https://fb.me/ad",
        ReferralCtwaClid="clid-1",
        OriginalRepliedMessageSid="SM" + "2" * 32,
    )
    [message] = connector().parse(webhook(form))
    assert isinstance(message, Inbound)
    assert message.extra["referral_source_url"] == "https://fb.me/ad"
    assert message.extra["referral_ctwa_clid"] == "clid-1"
    assert message.extra["original_replied_message_sid"] == "SM" + "2" * 32


def test_parse_status_callback() -> None:
    form = [("MessageSid", MESSAGE_SID), ("MessageStatus", "undelivered"), ("ErrorCode", "63016")]
    assert connector().parse(webhook(form)) == [DeliveryStatus(
        "whatsapp", MESSAGE_SID, "failed", "63016",
        reason="Twilio error 63016: the customer's 24-hour window is closed: only an approved template can reach them",
        final=True)]


@pytest.mark.parametrize(("twilio_status", "state"), [
    ("accepted", "queued"), ("queued", "queued"), ("sending", "queued"), ("sent", "sent"),
    ("delivered", "delivered"), ("read", "read"), ("undelivered", "failed"), ("failed", "failed"),
    ("canceled", "failed"),
])
def test_statuses_map_to_the_normalised_states(twilio_status: str, state: str) -> None:
    [status] = connector().parse(webhook([("MessageSid", MESSAGE_SID), ("MessageStatus", twilio_status)]))
    assert isinstance(status, DeliveryStatus) and status.status == state


def test_a_status_about_no_message_baton_sent_is_ignored() -> None:
    assert connector().parse(webhook([("MessageSid", MESSAGE_SID), ("MessageStatus", "received")])) == []


def test_a_number_that_is_not_e164_gives_no_phone() -> None:
    [message] = connector().parse(webhook(inbound_form(Body="hi", From="whatsapp:business-id")))
    assert isinstance(message, Inbound) and message.phone == ""


def test_parse_rejects_a_status_callback_without_a_status() -> None:
    with pytest.raises(BadRequest, match="MessageStatus"):
        connector().parse(webhook([("MessageSid", MESSAGE_SID), ("MessageStatus", "")]))


@pytest.mark.parametrize("count", ["²", "١", "-1", "11", "two"])
def test_parse_rejects_a_media_count_that_is_not_0_to_10(count: str) -> None:
    with pytest.raises(BadRequest, match="NumMedia"):
        connector().parse(webhook(inbound_form(Body="hi", NumMedia=count)))


@pytest.mark.parametrize("field", ["MessageSid", "From"])
def test_parse_rejects_missing_required_field(field: str) -> None:
    form = [(name, value) for name, value in inbound_form(Body="hi") if name != field]
    with pytest.raises(BadRequest, match=field):
        connector().parse(webhook(form))


def test_acknowledge_is_empty_twiml() -> None:
    ack = connector().acknowledge(request([]))
    assert (ack.body, ack.media_type, ack.status) == (str(MessagingResponse()), "text/xml", 200)
    assert ack.body == '<?xml version="1.0" encoding="UTF-8"?><Response />'


# Sending


def test_send_makes_the_request_twilio_expects() -> None:
    with FakeTwilio() as twilio:
        whatsapp = connector(api_base_url=twilio.base_url)
        whatsapp.webhook_url = "https://baton.example.com/webhooks/whatsapp"
        result = whatsapp.send(outbound())
        [sent] = twilio.requests
    assert sent.method == "POST"
    assert sent.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    assert sent.auth == (ACCOUNT_SID, AUTH_TOKEN)
    assert (
        sent.headers["authorization"]
        == "Basic " + base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
    )
    assert sent.headers["content-type"] == "application/x-www-form-urlencoded"
    assert sent.form == {
        "To": [SENDER],
        "From": [OUR_NUMBER],
        "Body": ["Hello!"],
        "StatusCallback": ["https://baton.example.com/webhooks/whatsapp"],
    }
    assert result.provider_id.startswith("SM") and len(result.provider_id) == 34
    assert result.status == "queued"


def test_send_media_buttons_and_no_status_callback() -> None:
    with FakeTwilio() as twilio:
        whatsapp = connector(api_base_url=twilio.base_url, status_callback=False)
        whatsapp.webhook_url = "https://baton.example.com/webhooks/whatsapp"
        whatsapp.send(
            outbound(
                "Your invoice", {"type": "media", "urls": ["https://x.test/a.pdf", "https://x.test/b.png"]}
            )
        )
        whatsapp.send(outbound("Pick one:", {"type": "buttons", "options": ["Billing", "Shipping"]}))
        media, buttons = twilio.requests
    assert media.form["MediaUrl"] == ["https://x.test/a.pdf", "https://x.test/b.png"]
    assert "StatusCallback" not in media.form
    assert buttons.form["Body"] == ["Pick one:\n1. Billing\n2. Shipping"]
    assert buttons.form["To"] == [SENDER]


def test_send_reuses_one_client_per_thread() -> None:
    with FakeTwilio() as twilio:
        whatsapp = connector(api_base_url=twilio.base_url)
        whatsapp.send(outbound())
        client = whatsapp._client()
        whatsapp.send(outbound())
        assert whatsapp._client() is client
        other: list[object] = []
        thread = threading.Thread(target=lambda: other.append(whatsapp._client()))
        thread.start()
        thread.join()
        assert other[0] is not client  # a requests.Session is not shared between sending threads
        assert len(twilio.requests) == 2


@pytest.mark.parametrize(("status", "code"), [(429, 20429), (500, 20500), (503, 20503)])
def test_throttling_and_server_errors_are_retryable(status: int, code: int) -> None:
    with FakeTwilio() as twilio:
        twilio.fail_next(status, code, "Try again later")
        with pytest.raises(SendFailed) as failure:
            connector(api_base_url=twilio.base_url).send(outbound())
    assert failure.value.retryable is True
    assert str(code) in failure.value.reason


def test_outside_the_24_hour_window_is_not_retryable() -> None:
    message = "Failed to send freeform message because you are outside the allowed window."
    with FakeTwilio() as twilio:
        twilio.fail_next(400, 63016, message)
        with pytest.raises(SendFailed) as failure:
            connector(api_base_url=twilio.base_url).send(outbound())
    assert failure.value.retryable is False
    assert "63016" in failure.value.reason
    assert "24-hour window is closed" in failure.value.reason  # in words an agent understands, not Twilio's


def test_wrong_credentials_are_not_retryable() -> None:
    with FakeTwilio() as twilio, pytest.raises(SendFailed) as failure:
        connector(api_base_url=twilio.base_url, auth_token="stale-token").send(outbound())
    assert failure.value.retryable is False
    assert "20003" in failure.value.reason


def test_connection_refused_is_retryable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(SendFailed, match="unreachable") as failure:
        connector(api_base_url=f"http://127.0.0.1:{port}").send(outbound())
    assert failure.value.retryable is True


def test_nothing_to_send_fails_before_calling_twilio() -> None:
    with FakeTwilio() as twilio:
        with pytest.raises(SendFailed, match="nothing to send") as failure:
            connector(api_base_url=twilio.base_url).send(outbound(""))
        assert twilio.requests == []
    assert failure.value.retryable is False


# Settings


def test_disabled_reason_names_missing_credentials() -> None:
    whatsapp = TwilioWhatsApp(
        "whatsapp", TwilioWhatsApp.Settings.model_validate({"account_sid": ACCOUNT_SID})
    )
    assert whatsapp.disabled_reason() == (
        "missing TWILIO_AUTH_TOKEN, TWILIO_WHATSAPP_FROM (settings: auth_token, from)"
    )
    assert connector().disabled_reason() is None
    assert connector(enabled=False).disabled_reason() == "disabled in settings (enabled: false)"


def test_from_number_is_normalised() -> None:
    assert connector(**{"from": "+14155238886"}).settings.from_number == OUR_NUMBER
    assert connector(**{"from": OUR_NUMBER}).settings.from_number == OUR_NUMBER


@pytest.mark.parametrize(
    ("settings", "complaint"),
    [
        ({"account_sid": "AC123"}, "'AC' followed by 32 hex digits"),
        ({"account_sid": "SK" + "0" * 32}, "'AC' followed by 32 hex digits"),
        (
            {"enabled": True, "account_sid": ACCOUNT_SID, "from": "+14155238886"},
            "enabled is true but auth_token",
        ),
        ({"from": "14155238886"}, "E.164"),
        ({"api_base_url": "api.twilio.com"}, "absolute http"),
        ({"unknown": "x"}, "Extra inputs are not permitted"),
    ],
)
def test_invalid_settings_are_rejected(settings: dict[str, Any], complaint: str) -> None:
    with pytest.raises(ValidationError, match=complaint):
        TwilioWhatsApp.Settings.model_validate(settings)


# Asking Twilio what became of a send

def test_lookup_finds_the_newest_message_with_the_same_body_to_the_recipient_since_the_attempt() -> None:
    import time

    from gateway.connector import Template

    with FakeTwilio() as twilio:
        twilio_connector = connector(api_base_url=twilio.base_url)
        attempted = time.time()
        twilio_connector.send(outbound("Your order shipped."))
        other = Outbound("whatsapp", "whatsapp:+14155550111", "Your order shipped.", "msg-2", "conv-2")
        twilio_connector.send(other)
        [(_, ours), (_, theirs)] = twilio.created
        found = twilio_connector.lookup_send(outbound("Your order shipped."), attempted)
        assert found is not None and (found.found, found.provider_id, found.status) == (True, ours, "queued")
        assert [r.path.split("?")[1] for r in twilio.requests if r.method == "GET"] == [
            "To=whatsapp%3A%2B14155550100&From=whatsapp%3A%2B14155238886&PageSize=100"]
        twilio.set_status(ours, "delivered")
        assert twilio_connector.lookup_send(outbound("Your order shipped."), attempted).status == "delivered"
        # Another body, or a send long before this one's message was written, is not it.
        assert twilio_connector.lookup_send(outbound("Your order was delayed."), attempted).found is False
        assert twilio_connector.lookup_send(outbound("Your order shipped."), attempted + 60).found is False
        # A template is told apart by its text, when Baton knows it.
        template = Template("shipped", "HX" + "0" * 32, body="Order {{1}} shipped.", params=("order",))
        sent = Outbound("whatsapp", SENDER, "", "msg-3", "conv-1", template=template, params=("A-7",))
        twilio.forget(theirs)
        assert twilio_connector.lookup_send(sent, attempted).found is False
        blind = Outbound("whatsapp", SENDER, "", "msg-3", "conv-1", template=Template("x", "HX" + "1" * 32))
        assert twilio_connector.lookup_send(blind, attempted) is None


def test_lookup_failures_say_why_and_may_be_retried() -> None:
    with FakeTwilio() as twilio:
        twilio_connector = connector(api_base_url=twilio.base_url)
        twilio.fail_next(503, 20503, "Service Unavailable")
        with pytest.raises(SendFailed) as failure:
            twilio_connector.lookup_send(outbound(), 0)
        assert failure.value.retryable and "Twilio error 20503 (HTTP 503): Service Unavailable" in failure.value.reason
        twilio.fail_next(401, 20003, "Authenticate")
        with pytest.raises(SendFailed) as refused:
            twilio_connector.lookup_send(outbound(), 0)
        assert not refused.value.retryable and "20003" in refused.value.reason
    with pytest.raises(SendFailed) as unreachable:
        connector(api_base_url=twilio.base_url).lookup_send(outbound(), 0)
    assert "Twilio unreachable" in unreachable.value.reason
