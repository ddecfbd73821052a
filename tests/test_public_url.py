"""Twilio posts delivery statuses only to the StatusCallback URL given with each message, which Baton builds from
`public_url`. Without it no status ever comes back, and Baton says so where a user looks: `baton check`, the start-up
log, the serve banner, and the inbox (the conversation's `delivery_reports: false`), instead of "Queued" forever."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from starlette.testclient import TestClient
from twilio.request_validator import RequestValidator

from gateway.cli import print_urls
from gateway.deployment import Deployment, build_channels, no_statuses
from gateway.web.app import create_app
from tests import fake_meta as meta
from tests.conftest import agent_token, baton, config_tree, run_jobs
from tests.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio

PUBLIC = "https://baton.example.com"
WARNING = "public_url is not set, so the provider cannot post delivery statuses back"


def twilio_channel(base_url: str = "http://127.0.0.1:9", **extra: object) -> dict[str, object]:
    return {"name": "wa", "type": "twilio_whatsapp", "account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN,
            "from": "+14155238886", "api_base_url": base_url, **extra}


def meta_channel() -> dict[str, object]:
    return {"name": "wa-meta", "type": "whatsapp_cloud", "phone_number_id": meta.PHONE_NUMBER_ID,
            "access_token": meta.ACCESS_TOKEN, "app_secret": meta.APP_SECRET, "verify_token": meta.VERIFY_TOKEN}


def test_only_a_sending_channel_whose_statuses_need_public_url_is_warned_about_and_only_without_it(
        make_deployment: Callable[..., Deployment]) -> None:
    without = make_deployment(channels=[twilio_channel(), meta_channel(), {"name": "chat", "type": "webchat"}])
    assert no_statuses(without.channels["wa"]) is not None and WARNING in str(no_statuses(without.channels["wa"]))
    assert no_statuses(without.channels["wa-meta"]) is None  # Meta posts statuses to the app's own webhook URL
    assert no_statuses(without.channels["chat"]) is None  # webchat: nothing to report
    assert no_statuses(make_deployment(public_url=PUBLIC, channels=[twilio_channel()]).channels["wa"]) is None
    chosen = make_deployment(channels=[twilio_channel(status_callback=False)])  # an operator's choice: not warned
    assert no_statuses(chosen.channels["wa"]) is None


def test_start_up_logs_the_warning_once_per_channel_and_not_in_quiet_children(
        caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    from gateway.config import parse_config

    config = parse_config(yaml.safe_dump(config_tree("shop", channels=[twilio_channel()])), base_dir=tmp_path)
    with caplog.at_level(logging.WARNING, logger="baton"):
        build_channels(config)
        build_channels(config, quiet=True)
    assert [r.getMessage() for r in caplog.records if WARNING in r.getMessage()] == [
        f"channel 'wa' (twilio_whatsapp): {no_statuses(build_channels(config, quiet=True)['wa'])}"]


def test_the_serve_banner_says_it_on_the_channels_webhook_line(make_deployment: Callable[..., Deployment],
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    print_urls(make_deployment(channels=[twilio_channel()]), "127.0.0.1", 8000, "redis://x", 1, 1)
    banner = capsys.readouterr().out
    assert "/webhooks/wa  [twilio_whatsapp]  (no delivery statuses: public_url is not set)" in banner
    print_urls(make_deployment(public_url=PUBLIC, channels=[twilio_channel()]), "127.0.0.1", 8000, "redis://x", 1, 1)
    assert "no delivery statuses" not in capsys.readouterr().out


def test_the_inbox_is_told_the_conversation_gets_no_delivery_reports(
        make_deployment: Callable[..., Deployment]) -> None:
    with FakeTwilio() as twilio:
        for public_url, reports in (("", False), (PUBLIC, None)):
            deployment = make_deployment(public_url=public_url, channels=[twilio_channel(twilio.base_url)])
            form = {"MessageSid": "SM" + "c" * 32, "AccountSid": ACCOUNT_SID, "From": "whatsapp:+14155550100",
                    "To": "whatsapp:+14155238886", "Body": "hello", "NumMedia": "0"}
            url = f"{public_url or 'http://testserver'}/webhooks/wa"
            headers = {"X-Twilio-Signature": RequestValidator(AUTH_TOKEN).compute_signature(url, form)}
            with TestClient(create_app(deployment)) as client:
                assert client.post("/webhooks/wa", data=form, headers=headers).status_code == 200
                run_jobs(deployment)
                agent = agent_token(deployment)
                [listed] = client.get("/api/conversations?view=all", headers=agent).json()["conversations"]
                detail = client.get(f"/api/conversations/{listed['id']}", headers=agent).json()["conversation"]
            assert listed.get("delivery_reports") is reports and detail.get("delivery_reports") is reports
        sent = [r.form for r in twilio.requests if r.method == "POST"]
    assert "StatusCallback" not in sent[0] and sent[1]["StatusCallback"] == [f"{PUBLIC}/webhooks/wa"]


@pytest.mark.slow
def test_baton_check_warns_about_it_and_still_passes(tmp_path: Path) -> None:
    for public_url in ("", PUBLIC):
        path = tmp_path / "baton.yaml"
        tree = {"workspaces": [{"id": "shop", "channels": [twilio_channel()]}], **(
            {"public_url": public_url} if public_url else {})}
        path.write_text(yaml.safe_dump(tree))
        result = baton("check", "--config", str(path), cwd=tmp_path)
        assert result.returncode == 0, result.stdout + result.stderr
        line = next(line for line in result.stdout.splitlines() if line.startswith("channel wa "))
        if public_url:
            assert line == "channel wa (twilio_whatsapp): ready"
        else:
            assert line.startswith("channel wa (twilio_whatsapp): ready; a warning: public_url is not set")
