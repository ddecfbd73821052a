"""The SMTP notifier against a real local SMTP server (aiosmtpd), and reminders that nobody took a waiting chat, then
its escalation to the admins: by email end to end through the worker's jobs and timers, once each, ended by anyone
taking the chat; a server that is down makes the job fail (so RQ retries it); a customer's name cannot add a header;
bad addresses are config errors naming the path."""

from __future__ import annotations

import email
import time
from collections.abc import Callable, Iterator
from email.message import Message
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from starlette.testclient import TestClient

from gateway.config import ConfigError
from gateway.deployment import Deployment
from gateway.handover import fallback
from gateway.web.app import create_app
from plugins.smtp_notifier import SMTPNotifier, SMTPSettings
from tests.conftest import Visitor, agent_token, chat_channel, free_port, run_jobs


class Inbox:
    """What the SMTP server received: (envelope recipients, parsed message)."""

    def __init__(self) -> None:
        self.mail: list[tuple[list[str], Message]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        self.mail.append((list(envelope.rcpt_tos), email.message_from_bytes(envelope.content)))
        return "250 OK"

    def subjects(self) -> list[str]:
        return [str(message["Subject"]) for _, message in self.mail]


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


def smtp_settings(port: int, **extra: Any) -> dict[str, Any]:
    """As in config.yaml (`type` and the notifier's settings)."""
    return {"type": "smtp", "host": "127.0.0.1", "port": port, "security": "none", "sender": "baton@shop.example",
            "to": ["team@shop.example"], "escalate_to": ["lead@shop.example"],
            "inbox_url": "https://support.shop.example/inbox", **extra}


def settings_of(config: dict[str, Any]) -> SMTPSettings:
    return SMTPSettings.model_validate({k: v for k, v in config.items() if k != "type"})


def test_a_handover_is_emailed_to_the_team(make_deployment: Callable[..., Deployment],
                                          smtp: tuple[Inbox, int]) -> None:
    inbox, port = smtp
    deployment = make_deployment(notifiers=[smtp_settings(port)])
    with TestClient(create_app(deployment)) as client:
        cid = Visitor(client, chat_channel(deployment)).say("transfer to agent")["conversation"]
        run_jobs(deployment)
    [(recipients, message)] = inbox.mail
    assert recipients == ["team@shop.example"]
    assert str(message["Subject"]).endswith("needs a human") and message["From"] == "baton@shop.example"
    text = message.get_payload(decode=True).decode()
    assert f"https://support.shop.example/inbox#/inbox/all/{cid}" in text and "Reason:" in text
    assert str(message["Message-ID"]).startswith("<baton.")


def test_nobody_takes_it_reminders_then_the_admins(make_deployment: Callable[..., Deployment],
                                                    smtp: tuple[Inbox, int]) -> None:
    inbox, port = smtp
    deployment = make_deployment(notifiers=[smtp_settings(port)], handover={"remind_every": 0.3, "reminders": 1})
    with TestClient(create_app(deployment)) as client:
        Visitor(client, chat_channel(deployment)).say("transfer to agent")
        run_jobs(deployment)
        deadline = time.monotonic() + 15
        while len(inbox.mail) < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
            fallback.fire_due(deployment)
            run_jobs(deployment)
        subjects = inbox.subjects()
        assert len(subjects) == 3, subjects
        assert subjects[1].startswith("Still waiting:") and subjects[2].startswith("Escalated:")
        assert inbox.mail[1][0] == ["team@shop.example"]
        assert inbox.mail[2][0] == ["team@shop.example", "lead@shop.example"]  # the admins too
        time.sleep(0.5)
        fallback.fire_due(deployment)
        run_jobs(deployment)
        assert len(inbox.mail) == 3, inbox.subjects()  # escalated once, then nothing more


def test_taking_the_chat_ends_the_reminders(make_deployment: Callable[..., Deployment],
                                            smtp: tuple[Inbox, int]) -> None:
    inbox, port = smtp
    deployment = make_deployment(notifiers=[smtp_settings(port)], handover={"remind_every": 0.3, "reminders": 3})
    with TestClient(create_app(deployment)) as client:
        cid = Visitor(client, chat_channel(deployment)).say("transfer to agent")["conversation"]
        run_jobs(deployment)
        taken = client.post(f"/api/conversations/{cid}/assign", json={"assignee": "me"},
                            headers=agent_token(deployment))
        assert taken.status_code == 200, taken.text
        time.sleep(0.5)
        fallback.fire_due(deployment)
        run_jobs(deployment)
    assert len(inbox.mail) == 1  # the handover alone


def test_a_server_that_is_down_fails_the_job_so_it_is_retried() -> None:
    notifier = SMTPNotifier("shop-0", settings_of(smtp_settings(free_port(), timeout=2)))
    with pytest.raises(RuntimeError, match="SMTP 127.0.0.1"):
        notifier.notify({"type": "handover", "conversation": "1", "customer": "Maria", "id": "1-0"})


def test_a_customers_name_cannot_add_a_header(smtp: tuple[Inbox, int]) -> None:
    inbox, port = smtp
    notifier = SMTPNotifier("shop-0", settings_of(smtp_settings(port)))
    notifier.notify({"type": "handover", "conversation": "7", "id": "1-0", "workspace": "shop",
                     "customer": "Maria\r\nBcc: victim@example.com", "reason": "asked\r\nfor a person"})
    [(recipients, message)] = inbox.mail
    assert recipients == ["team@shop.example"] and message["Bcc"] is None
    assert str(message["Subject"]) == "Maria Bcc: victim@example.com needs a human"


def test_events_not_chosen_are_not_sent(smtp: tuple[Inbox, int]) -> None:
    inbox, port = smtp
    notifier = SMTPNotifier("shop-0", settings_of(smtp_settings(port, events=["escalated"])))
    notifier.notify({"type": "handover", "conversation": "7", "id": "1-0", "customer": "Maria"})
    assert inbox.mail == []


@pytest.mark.parametrize(("settings", "path"), [
    ({"to": ["not-an-address"]}, "workspaces[0].notifiers[0].to: Value error, 'not-an-address' is not an email"),
    ({"sender": "baton"}, "workspaces[0].notifiers[0].sender"),
    ({"to": []}, "workspaces[0].notifiers[0].to"),
    ({"security": "tls"}, "workspaces[0].notifiers[0].security"),
])
def test_bad_settings_are_config_errors_naming_the_path(make_deployment: Callable[..., Deployment],
                                                       settings: dict[str, Any], path: str) -> None:
    with pytest.raises(ConfigError) as raised:
        make_deployment(notifiers=[{**smtp_settings(25), **settings}])
    assert path in str(raised.value)
