"""The conformance suite can fail: run as a connector author runs it (`pytest -p gateway.testing`, in a session of
its own) over a careless Twilio connector, it fails exactly the checks that connector breaks, and says which."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow  # a pytest session of its own: `pytest -m slow`

CARELESS = '''
import sys
import uuid
from dataclasses import replace

import pytest

sys.path.insert(0, {root!r})

from connectors.twilio_whatsapp import TwilioWhatsApp
from gateway.plugin import DeliveryStatus, Inbound, SendFailed
from gateway.testing import WebhookConformance
from tests.fake_twilio import FakeTwilio
from tests.test_conformance import TwilioProvider


class CarelessTwilio(TwilioWhatsApp):
    """Checks no signature, makes up message ids and statuses, and retries what may have been sent."""

    type = "careless_twilio"

    def verify(self, request):
        pass

    def parse(self, request):
        return [replace(item, provider_id=uuid.uuid4().hex) if isinstance(item, Inbound) else
                replace(item, status="sent") for item in super().parse(request)]

    def send(self, message):
        try:
            return super().send(message)
        except SendFailed as exc:
            raise SendFailed(exc.reason, retryable=True) from exc


class CarelessProvider(TwilioProvider):
    connector = CarelessTwilio


class TestCareless(WebhookConformance):
    @pytest.fixture
    def provider(self):
        with FakeTwilio() as fake:
            yield CarelessProvider(fake)
'''

BROKEN = {
    "test_declares_the_api_version_it_needs",  # this module declares none
    "test_a_valid_request_parses_into_normalised_items",
    "test_a_request_without_its_signature_is_refused",
    "test_a_request_with_a_wrong_signature_is_refused",
    "test_a_body_changed_after_signing_is_refused",
    "test_a_retried_delivery_is_recorded_once_and_answered_once",
    "test_statuses_map_to_the_normalised_states",
    "test_statuses_never_move_backwards",
    "test_a_refused_send_is_failed_not_retried",
    "test_a_timed_out_send_may_have_been_sent",
}


@pytest.mark.timeout(600)  # a pytest session of its own, which imports Baton and runs 19 checks
def test_a_careless_connector_fails_exactly_the_checks_it_breaks(
        pytester: pytest.Pytester, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", redis_url)
    pytester.makepyfile(test_careless=CARELESS.format(root=str(ROOT)))
    result = pytester.runpytest_subprocess("-p", "gateway.testing", "-p", "no:cacheprovider", "-q", "-rf",
                                           timeout=600)
    failed = {line.split("::")[-1].split(" ")[0] for line in result.outlines if line.startswith("FAILED ")}
    assert failed == BROKEN, result.stdout.str()
    result.assert_outcomes(failed=len(BROKEN), passed=19 - len(BROKEN))
    result.stdout.fnmatch_lines(["*Baton conformance: careless_twilio*: 9 passed, 10 failed*",
                                 "*failed   a request without its signature is refused with 403*"])
