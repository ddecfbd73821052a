"""The no-human fallback's contact form: what it asks, how answers are validated, where they go."""

from __future__ import annotations

import re
from typing import Any

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from gateway.config import WorkspaceConfig
from gateway.deployment import Deployment
from gateway.errors import BadRequest

FORM_TEXT = ("Sorry to keep you waiting: no one from our team is free right now. Leave your contact "
             "details and we'll get back to you as soon as we can.")
LIMITS = {"name": 120, "phone": 40, "email": 254, "message": 2000}
FORM: dict[str, Any] = {"type": "contact_form", "fields": [
    {"name": "name", "label": "Name", "type": "text", "required": False, "max_length": LIMITS["name"]},
    {"name": "phone", "label": "Phone", "type": "tel", "required": False, "max_length": LIMITS["phone"]},
    {"name": "email", "label": "Email", "type": "email", "required": False, "max_length": LIMITS["email"]},
    {"name": "message", "label": "Message", "type": "textarea", "required": False, "max_length": LIMITS["message"]},
]}
FIELDS = tuple(field["name"] for field in FORM["fields"])
_EMAIL_IN_TEXT = re.compile(r"[^\s@<>(),;:\"']+@[^\s@<>(),;:\"']+\.[A-Za-z]{2,}")


def validate(details: dict[str, Any]) -> dict[str, str]:
    """Normalised details; BadRequest naming each bad field. A phone number or an email is required."""
    unknown = set(details) - set(FIELDS)
    if unknown:
        raise BadRequest(f"unknown field(s): {', '.join(sorted(unknown))}")
    clean = {name: str(details.get(name) or "").strip() for name in FIELDS}
    errors = {name: f"at most {LIMITS[name]} characters" for name in FIELDS if len(clean[name]) > LIMITS[name]}
    if clean["email"] and "email" not in errors:
        clean["email"], problem = _email(clean["email"])
        errors.update({"email": problem} if problem else {})
    if clean["phone"] and "phone" not in errors:
        clean["phone"], problem = _phone(clean["phone"])
        errors.update({"phone": problem} if problem else {})
    if not clean["email"] and not clean["phone"]:
        errors["phone"] = errors["email"] = "leave a phone number or an email address"
    if errors:
        raise BadRequest("the contact details are not valid", fields=errors)
    return {name: value for name, value in clean.items() if value}


def _email(value: str) -> tuple[str, str]:
    try:
        return validate_email(value, check_deliverability=False).normalized, ""
    except EmailNotValidError as exc:
        return value, str(exc)


def _phone(value: str) -> tuple[str, str]:
    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        return value, "use the international format, e.g. +44 20 7946 0958"
    if not phonenumbers.is_valid_number(number):
        return value, "this is not a valid phone number"
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), ""


def extract(text: str) -> dict[str, str]:
    """Contact details found in a free-text reply (WhatsApp has no form): valid ones only."""
    found: dict[str, str] = {}
    email = _EMAIL_IN_TEXT.search(text)
    if email and not _email(email.group())[1]:
        found["email"] = _email(email.group())[0]
    for match in phonenumbers.PhoneNumberMatcher(text, None):
        found["phone"] = phonenumbers.format_number(match.number, phonenumbers.PhoneNumberFormat.E164)
        break
    return found


def read_reply(deployment: Deployment, workspace: WorkspaceConfig, conversation: dict[str, Any],
               new: list[dict[str, Any]]) -> None:
    """A reply to the form sent as text: capture whatever valid details it holds."""
    text = "\n".join(m.get("text", "") for m in new)
    details = extract(text)
    if details:
        details["message"] = text[: LIMITS["message"]]
        capture(deployment, workspace.id, conversation, details)


def capture(deployment: Deployment, workspace_id: str, conversation: dict[str, Any],
            details: dict[str, str]) -> str:
    """Store the details in Contacts, confirm to the customer, and notify every agent."""
    from gateway.jobs import enqueue_delivery, enqueue_notifications

    name = details.get("name", "")
    reach = " or ".join(v for v in (details.get("phone"), details.get("email")) if v)
    change = deployment.state.require(
        "capture", workspace_id, conversation=conversation["id"], details=details,
        summary=f"{name or 'The customer'} left contact details: {reach}",
        confirmation=f"Thank you{', ' + name if name else ''}! We'll get back to you at {reach}.")
    enqueue_notifications(deployment, workspace_id, {
        "type": "contact_captured", "workspace": workspace_id, "conversation": conversation["id"],
        "contact": change["contact"], "channel": conversation["channel"], **details})
    enqueue_delivery(deployment, workspace_id, conversation["id"], change["confirmation"])
    return str(change["contact"])
