"""When no human takes the chat in time: the no-human timer, the contact form it sends, and what the customer
leaves in it (through the widget's form, or as text on channels without forms), stored in Contacts.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from typing import Any

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from gateway import hours, metrics, texts
from gateway.config import WorkspaceConfig
from gateway.deployment import Deployment
from gateway.errors import BadRequest
from gateway.handover.store import Conversation, Message, TurnStamp

log = logging.getLogger("baton.fallback")

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
ASK_FOR_REACH = "Could you send a phone number or an email address we can reach you at?"
NOT_UNDERSTOOD = ("Sorry, I couldn't find a phone number or an email address in that. Could you send one, "
                  "e.g. +44 20 7946 0958 or name@example.com?")
NOTED_WITH_FORM = ("Thanks, the team will see your message. So that we can get back to you, please leave a phone "
                   "number or an email address in the form above.")
NOTED = ("Thanks, the team will see your message. So that we can get back to you, please send a phone number or "
         "an email address.")
FOLLOW_UP_EVERY_MS = 10 * 60 * 1000  # after the details are in, acknowledge further messages at most this often
_EMAIL_IN_TEXT = re.compile(r"[^\s@<>(),;:\"']+@[^\s@<>(),;:\"']+\.[A-Za-z]{2,}")
_INTRODUCED = re.compile(
    r"^(?:my name is|i am|i'm|it's|this is|me llamo|je m'appelle|ich bin|mi chiamo|meu nome é)\s+", re.IGNORECASE)
_NAME_WORD = re.compile(r"^[^\W\d_][^\W\d_'’.\-]*$")
_NOT_NAMES = frozenset("""ok okay yes no hi hello hey thanks thank you please sure help what why how when where who
    sorry fine good great perfect bye agent human person support hola gracias merci danke oui non si""".split())  # noqa: SIM905


def form_text(workspace: WorkspaceConfig, moment: datetime | None = None) -> str:
    """The contact form's words: outside business hours, they say when the team is back."""
    now = moment or datetime.now(UTC)
    if hours.is_open(workspace.business_hours, now):
        return FORM_TEXT
    back = hours.describe(hours.next_opening(workspace.business_hours, now), now)
    return (f"Our team is away right now and back {back}. Leave your contact details and we'll get back to you "
            "as soon as we're in.")


# --- the timer --------------------------------------------------------------------------------------------------

def fire_due(deployment: Deployment) -> list[dict[str, Any]]:
    """Send the contact form wherever a no-human wait is due (every worker runs this; each wait fires once). In a
    workspace without the form, a due wait only tells the agents again."""
    fired: list[dict[str, Any]] = []
    for workspace in deployment.config.workspaces:
        form = FORM if workspace.handover.contact_form else None
        sent, resolved = deployment.store.timers(workspace.id, text=form_text(workspace), form=form, limit=500)
        for item in resolved:
            metrics.RESOLVED.labels("ai").inc()
            metrics.AUTO_RESOLVED.inc()
            log.info("conversation %s: quiet for %g s after the AI's answer; resolved", item["conversation"],
                     workspace.reports.resolve_after,
                     extra={"workspace": workspace.id, "conversation": item["conversation"]})
        for item in sent:
            fired.append({"workspace": workspace.id, **item})
            metrics.FORMS.labels("sent").inc()
            log.info("conversation %s: no human took it in %g s; the contact form was sent", item["conversation"],
                     workspace.handover.no_human_timeout,
                     extra={"workspace": workspace.id, "conversation": item["conversation"]})
    return fired


# --- the details ------------------------------------------------------------------------------------------------

def validate(details: dict[str, Any]) -> dict[str, str]:
    """Normalised details; BadRequest naming each bad field. A phone number or an email is required."""
    unknown = set(details) - set(FIELDS)
    if unknown:
        raise BadRequest(f"unknown field(s): {', '.join(sorted(unknown))}")
    not_text = {name: "must be a string" for name, value in details.items() if not isinstance(value, str)}
    if not_text:  # str() would have stored {} as "{}" and ["Maria"] as "['Maria']"
        raise BadRequest("the contact details are not valid", fields=not_text)
    clean = {name: str(details.get(name, "")).strip() for name in FIELDS}
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
    """Contact details found in a free-text reply: a valid email, a valid phone number, a name said alone."""
    found: dict[str, str] = {}
    email = _EMAIL_IN_TEXT.search(text)
    if email and not _email(email.group())[1]:
        found["email"] = _email(email.group())[0]
    for match in phonenumbers.PhoneNumberMatcher(text, None):
        found["phone"] = phonenumbers.format_number(match.number, phonenumbers.PhoneNumberFormat.E164)
        break
    name = _name(text)
    if name and not found:
        found["name"] = name
    return found


def _name(text: str) -> str:
    """A name said alone ("Maria Lopez", "my name is maria"): up to four words, capitalised unless introduced."""
    plain = " ".join(text.strip().rstrip(".!").split())
    introduced = _INTRODUCED.match(plain)
    words = plain[introduced.end():].split() if introduced else plain.split()
    if not 0 < len(words) <= 4 or not all(_NAME_WORD.match(w) for w in words):
        return ""
    if {w.lower() for w in words} & _NOT_NAMES or len(plain) > LIMITS["name"]:
        return ""
    if introduced:
        return " ".join(w[:1].upper() + w[1:] for w in words)
    return plain if all(w[:1].isupper() for w in words) else ""


def capture(deployment: Deployment, workspace_id: str, conversation_id: str, details: dict[str, str],
            turn: TurnStamp | None = None, language: str = "en") -> str:
    """Store the details in Contacts, confirm to the customer (in `language`, the workspace's wording), and notify
    every agent; the contact id."""
    name = details.get("name", "")
    reach = f" {texts.OR.get(language, 'or')} ".join(v for v in (details.get("phone"), details.get("email")) if v)
    confirmation = texts.say("confirmation", language, deployment.workspace(workspace_id).texts,
                             name=f", {name}" if name else "", reach=reach)
    contact = deployment.store.capture(
        workspace_id, conversation_id, details, summary=f"{name or 'The customer'} left contact details: {reach}",
        confirmation=confirmation, turn=turn)
    metrics.FORMS.labels("captured").inc()
    log.info("conversation %s: contact details captured (%s) in contact %s", conversation_id,
             ", ".join(name for name in FIELDS if details.get(name)), contact,
             extra={"workspace": workspace_id, "conversation": conversation_id})
    return contact


# --- channels without forms: the reply comes as text, read by a turn -------------------------------------------

def answer_in_text(deployment: Deployment, workspace: WorkspaceConfig, conversation: Conversation,
                   new: list[Message], turn: TurnStamp, language: str = "en") -> str:
    """A customer who writes while the form is out or after it: capture what they left, say what is missing,
    or (once the details are in) tell them the team will follow up. What the turn did, for the log."""
    conversation_id = conversation["id"]
    text = "\n".join(m.get("text", "") for m in new).strip()
    if conversation.get("form_state") == "done":
        return _follow_up(deployment, workspace, conversation, turn)
    found = extract(text)
    contact = deployment.store.contact(workspace.id, conversation["contact"])
    details = {"name": found.get("name") or conversation.get("form_name", "") or contact.get("name", ""),
               "phone": found.get("phone", ""), "email": found.get("email", "")}
    if not details["phone"] and not details["email"] and found.get("name") and contact.get("phone"):
        details["phone"] = contact["phone"]  # a name alone on a channel that knows their number (WhatsApp)
    if details["phone"] or details["email"]:
        details["message"] = text[: LIMITS["message"]]
        capture(deployment, workspace.id, conversation_id, {k: v for k, v in details.items() if v}, turn, language)
        return "captured contact details"
    if found.get("name"):
        asked = texts.say("ask_for_reach", language, workspace.texts, name=found["name"])
        deployment.store.post(workspace.id, conversation_id, "system", asked,
                              kind="notice", turn=turn, form_name=found["name"])
        return "asked for a phone number or email"
    if looks_like_details(text):
        deployment.store.post(workspace.id, conversation_id, "system", NOT_UNDERSTOOD, kind="notice", turn=turn)
        return "asked again for contact details"
    return _noted(deployment, workspace, conversation, text, details, turn)


def looks_like_details(text: str) -> bool:
    """Is this an attempt at contact details (an address, a number), rather than a question or a remark for the
    team? Only an attempt is answered with what is wrong with it."""
    return "@" in text or sum(char.isdigit() for char in text) >= 5


def _noted(deployment: Deployment, workspace: WorkspaceConfig, conversation: Conversation, text: str,
           details: dict[str, str], turn: TurnStamp) -> str:
    """A question or a remark while the form is out: kept for the team. Where the channel already tells how to reach
    the customer (WhatsApp's number), that is their contact; otherwise they are asked once for a way to reach them."""
    conversation_id = conversation["id"]
    contact = deployment.store.contact(workspace.id, conversation["contact"])
    if contact.get("phone"):
        found = {**{k: v for k, v in details.items() if v}, "phone": contact["phone"],
                 "message": text[: LIMITS["message"]]}
        capture(deployment, workspace.id, conversation_id, found, turn)
        return "kept the message with the customer's known number"
    if conversation.get("noted_at"):
        deployment.store.finish(workspace.id, conversation_id, turn)
        return "recorded (asked for contact details already)"
    notice = NOTED if conversation.get("delivers") == "1" else NOTED_WITH_FORM
    deployment.store.post(workspace.id, conversation_id, "system", notice, kind="notice", turn=turn,
                          noted_at=deployment.store.now_ms())
    return "told the customer the team will see the message, and asked how to reach them"


def _follow_up(deployment: Deployment, workspace: WorkspaceConfig, conversation: Conversation,
               turn: TurnStamp) -> str:
    last = int(conversation.get("followed_up_at") or conversation.get("captured_at") or 0)
    now = deployment.store.now_ms()
    if now - last < FOLLOW_UP_EVERY_MS and conversation.get("followed_up_at"):
        deployment.store.finish(workspace.id, conversation["id"], turn)
        return "recorded (followed up recently)"
    contact = deployment.store.contact(workspace.id, conversation["contact"])
    reach = " or ".join(v for v in (contact.get("phone"), contact.get("email")) if v) or "the details you left"
    deployment.store.post(workspace.id, conversation["id"], "system",
                          f"Thanks, we've added this to your request. Our team will follow up at {reach}.",
                          kind="notice", turn=turn, followed_up_at=now)
    return "told the customer the team will follow up"
