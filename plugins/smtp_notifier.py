"""Emails the team (SMTP): a chat handed over, a reminder that nobody took it, an escalation, a missed response
target. Plain text; the customer's words are quoted as text, and header values never carry a line break."""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any, Literal

from email_validator import EmailNotValidError, validate_email
from pydantic import Field, field_validator

from gateway.plugin import Notifier, NotifierSettings, hookimpl

BATON_API_VERSION = "1.1"

#: What goes to the admins (`escalate_to`) as well as to `to`.
FOR_ADMINS = ("escalated", "sla_breached")


def _address(value: str) -> str:
    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise ValueError(f"{value!r} is not an email address ({exc})") from exc


class SMTPSettings(NotifierSettings):
    host: str = Field(min_length=1)
    port: int = Field(587, ge=1, le=65535)
    #: starttls (upgrade a plain connection; refused if the server cannot), ssl (TLS from the start), none.
    security: Literal["starttls", "ssl", "none"] = "starttls"
    username: str = ""
    password: str = ""
    sender: str = Field(description="the From address")
    to: list[str] = Field(min_length=1, description="who is told: the team's addresses")
    #: Also told of escalations and missed response targets (the admins).
    escalate_to: list[str] = []
    events: list[str] = Field(default_factory=lambda: ["handover", "reminder", "escalated", "sla_breached",
                                                       "no_human_in_time"])
    #: The inbox's address, for a link to the chat ("https://support.example.com/inbox").
    inbox_url: str = ""
    timeout: float = Field(10.0, gt=0, le=60)

    @field_validator("sender")
    @classmethod
    def _sender(cls, value: str) -> str:
        return _address(value)

    @field_validator("to", "escalate_to")
    @classmethod
    def _recipients(cls, value: list[str]) -> list[str]:
        return [_address(item) for item in value]


def _line(text: Any, most: int = 120) -> str:
    """A header value: one line, at most `most` characters."""
    flat = " ".join(str(text or "").split())
    return flat if len(flat) <= most else flat[: most - 1] + "…"


def subject(notification: dict[str, Any]) -> str:
    who = notification.get("customer") or "A customer"
    kind = notification.get("type")
    if kind == "handover":
        return f"{who} needs a human"
    if kind == "reminder":
        return f"Still waiting: {who} needs a human ({_minutes(notification.get('waited_ms'))})"
    if kind == "escalated":
        return f"Escalated: nobody has taken {who}'s chat ({_minutes(notification.get('waited_ms'))})"
    if kind == "sla_breached":
        return f"Past target: {who} is waiting for an answer"
    if kind == "no_human_in_time":
        return f"Nobody answered {who} in time"
    return f"{who}: {str(kind).replace('_', ' ')}"


def _minutes(ms: Any) -> str:
    minutes = max(0, int(ms or 0)) // 60_000
    return f"{minutes} min" if minutes < 120 else f"{minutes // 60} h"


def body(notification: dict[str, Any], inbox_url: str) -> str:
    lines = [subject(notification), ""]
    for label, name in (("Channel", "channel"), ("Team", "team"), ("Reason", "reason"), ("Summary", "summary"),
                        ("Owner", "owner")):
        if notification.get(name):
            lines.append(f"{label}: {notification[name]}")
    if inbox_url:
        lines += ["", f"Open it: {inbox_url.rstrip('/')}#/inbox/all/{notification.get('conversation', '')}"]
    lines += ["", f"Conversation {notification.get('conversation', '')} in workspace "
                  f"{notification.get('workspace', '')}; notification {notification.get('id', '')}."]
    return "\n".join(lines) + "\n"


class SMTPNotifier(Notifier):
    type = "smtp"
    Settings = SMTPSettings

    def recipients(self, notification: dict[str, Any]) -> list[str]:
        found = list(self.settings.to)
        if notification.get("type") in FOR_ADMINS:
            found += [a for a in self.settings.escalate_to if a not in found]
        return found

    def message(self, notification: dict[str, Any]) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self.settings.sender
        message["To"] = ", ".join(self.recipients(notification))
        message["Subject"] = _line(subject(notification))
        message["Date"] = formatdate(localtime=False)
        # The same notification sent twice (delivery is at least once) has one Message-ID: mail clients fold them.
        domain = self.settings.sender.rpartition("@")[2]
        message["Message-ID"] = f"<baton.{notification.get('workspace', '')}.{notification.get('id', '')}@{domain}>"
        message.set_content(body(notification, self.settings.inbox_url))
        return message

    def notify(self, notification: dict[str, Any]) -> None:
        if notification.get("type") not in self.settings.events:
            return
        settings = self.settings
        client: smtplib.SMTP
        try:
            if settings.security == "ssl":
                client = smtplib.SMTP_SSL(settings.host, settings.port, timeout=settings.timeout,
                                          context=ssl.create_default_context())
            else:
                client = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
            with client:
                if settings.security == "starttls":
                    client.starttls(context=ssl.create_default_context())
                if settings.username:
                    client.login(settings.username, settings.password)
                client.send_message(self.message(notification))
        except (OSError, smtplib.SMTPException) as exc:  # retried by the notification's job
            raise RuntimeError(f"SMTP {settings.host}:{settings.port}: {exc}") from exc


@hookimpl
def register_notifiers(register: Callable[[type], None]) -> None:
    register(SMTPNotifier)
