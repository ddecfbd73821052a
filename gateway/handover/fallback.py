"""When no human takes the chat in time: the no-human timer, the contact form it sends, and what the customer
leaves in it (through the widget's form, or as text on channels without forms), stored in Contacts.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from typing import Any, TypedDict

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from gateway import hours, metrics, texts
from gateway.config import WorkspaceConfig
from gateway.deployment import Deployment
from gateway.errors import BadRequest
from gateway.handover import lifecycle
from gateway.handover.store import Conversation, Message, Said, TurnStamp

log = logging.getLogger("baton.fallback")

FORM_TEXT = texts.TEXTS["contact_form"]["en"]  # sent in the conversation's language (form_text)
LIMITS = {"name": 120, "phone": 40, "email": 254, "message": 2000}
FORM: dict[str, Any] = {"type": "contact_form", "fields": [
    {"name": "name", "label": "Name", "type": "text", "required": False, "max_length": LIMITS["name"]},
    {"name": "phone", "label": "Phone", "type": "tel", "required": False, "max_length": LIMITS["phone"]},
    {"name": "email", "label": "Email", "type": "email", "required": False, "max_length": LIMITS["email"]},
    {"name": "message", "label": "Message", "type": "textarea", "required": False, "max_length": LIMITS["message"]},
]}
FIELDS = tuple(field["name"] for field in FORM["fields"])
# In English; a turn says them in the conversation's language (gateway.texts).
ASK_FOR_REACH = "Could you send a phone number or an email address we can reach you at?"
NOT_UNDERSTOOD = texts.TEXTS["not_understood"]["en"]
NOTED_WITH_FORM = texts.TEXTS["noted_with_form"]["en"]
NOTED = texts.TEXTS["noted"]["en"]
FOLLOW_UP_EVERY_MS = 10 * 60 * 1000  # after the details are in, acknowledge further messages at most this often
_EMAIL_IN_TEXT = re.compile(r"[^\s@<>(),;:\"']+@[^\s@<>(),;:\"']+\.[A-Za-z]{2,}")
_NAME_WORD = re.compile(r"^[^\W\d_][^\W\d_'’.\-]*$")
_NOT_NAMES = frozenset("""ok okay yes no hi hello hey thanks thank you please sure help what why how when where who
    sorry fine good great perfect bye agent human person support hola gracias merci danke oui non si sí
    the a an my your our me and or but not for to in on at of with from is it this that i
    waiting looking trying still just also very so back here there interested happy busy available ready
    calling writing regards cheers best saludos cordialement grüße gruss saluti abraços atenciosamente
    bonjour salut hallo ciao olá ola grazie obrigado obrigada nein ja call email mail phone number name message
    order lamp""".split())  # noqa: SIM905
#: The labels of a reply written like the form ("name: Maria"), in the six languages.
_LABELS = {
    "name": "name nombre nom nome vorname",
    "phone": "phone tel tél teléfono telefono telefone telefon téléphone telephone mobile móvil movil celular "
             "cellulare handy portable cell número numero nummer numéro whatsapp",
    "email": "email e-mail mail correo courriel",
    "message": "message mensaje nachricht mensagem messaggio msg",
}
_LABEL_FIELD = {word: field for field, words in _LABELS.items() for word in words.split()}
_LABEL_WORDS = "|".join(sorted(map(re.escape, _LABEL_FIELD), key=len, reverse=True))
_LABEL = re.compile(rf"^({_LABEL_WORDS})\s*[:=]\s*", re.IGNORECASE)
#: "my name is maria": what follows is a name even in lower case.
_CALLED = re.compile(r"^(?:my name is|my name's|me llamo|mi nombre es|je m['’]appelle|mon nom est|ich heiße|"
                     r"ich heisse|mein name ist|mi chiamo|il mio nome è|meu nome é|meu nome e|me chamo)\s+",
                     re.IGNORECASE)
#: "I'm Maria": a name when capitalised, or beside the details it introduces.
_AM = re.compile(r"^(?:i am|i['’]m|im|it['’]s|this is|soy|je suis|c['’]est|ich bin|hier ist|sono|sou|aqui é)\s+",
                 re.IGNORECASE)
_PARTICLES = frozenset("da de del della di do dos das du la le van von der den y e".split())  # noqa: SIM905
_SEPARATORS = re.compile(r"\n|[,;|]|\s[-–—/]+\s|(?<=[.!?])\s+")
_FILLER = frozenset("""hi hello hey ok okay sure yes yeah yep please thanks thank you thx here it's it is its my
    email e-mail mail address phone number mobile cell is at on me call text reach contact or and also you can
    write whatsapp name i'm i am this that's the use via details regards cheers best bye
    hola sí si claro vale gracias por favor mi correo es teléfono telefono número numero y o aquí aqui tienes mis
    datos llamame llámame en al
    bonjour salut oui merci mon ma numéro est et ou voici mes coordonnées appelez-moi au
    hallo ja danke bitte meine mein nummer ist und oder hier sind unter erreichbar
    olá ola sim obrigado obrigada meu minha é e ou aqui está seu
    ciao sì grazie mio mia è numero o ecco il chiamami""".split())  # noqa: SIM905
_THANKS = r"(?:thanks|thank you|thx|gracias|merci|danke|obrigad[oa]|grazie)"
_DECLINED = re.compile(  # "no thanks, I'll wait": the customer does not want to be called back
    rf"^(?:(?:no|nope|nah|non|nein|não|nao)(?:[\s,!.]*{_THANKS}\b.*|[\s!.]*$)|not now\b|no need\b|rather not\b"
    r"|i'?d rather not\b|don'?t (?:call|contact|write to) me\b|no hace falta\b|pas besoin\b|nicht nötig\b"
    r"|não precisa\b|non serve\b)", re.IGNORECASE | re.DOTALL)
_GREETING = re.compile(r"^(?:hi|hello|hey|hola|buenas|bonjour|salut|hallo|ciao|olá|ola|oi)\b[\s,!.]*", re.IGNORECASE)
_JOINING = re.compile(r"^(?:and|but|also|y|e|et|und|pero|mais|aber|ma|mas)\s+", re.IGNORECASE)
_CONSONANTS = re.compile(r"[bcdfghjklmnpqrstvwxz]{5,}", re.IGNORECASE)


def form_text(workspace: WorkspaceConfig, moment: datetime | None = None, language: str = "en") -> str:
    """The contact form's words in `language`, the workspace's wording first: outside business hours, they say when
    the team is back."""
    now = moment or datetime.now(UTC)
    if hours.is_open(workspace.business_hours, now):
        return texts.say("contact_form", language, workspace.texts)
    back = hours.describe(hours.next_opening(workspace.business_hours, now), now, language)
    return texts.say("contact_form_away", language, workspace.texts, back=back)


def form_texts(workspace: WorkspaceConfig, moment: datetime | None = None) -> dict[str, str]:
    """The contact form's words in every language, for the timers' one step over many conversations: the state
    script picks each conversation's own (its stored `language`, else the workspace's)."""
    now = moment or datetime.now(UTC)
    said: dict[str, str] = {language: form_text(workspace, now, language) for language in texts.LANGUAGES}
    return {**said, "default": workspace.language}


def form_in(language: str) -> dict[str, Any]:
    """The contact form with its labels in `language`, which it names (the widget speaks it on the form)."""
    return {**FORM, "language": language,
            "fields": [{**field, "label": texts.LABELS[field["name"]].get(language, field["label"])}
                       for field in FORM["fields"]]}


def forms(workspace: WorkspaceConfig) -> dict[str, Any]:
    """The contact form in every language, as form_texts."""
    return {**{language: form_in(language) for language in texts.LANGUAGES}, "default": workspace.language}


# --- the timer --------------------------------------------------------------------------------------------------

def fire_due(deployment: Deployment) -> list[dict[str, Any]]:
    """Send the contact form wherever a no-human wait is due (every worker runs this; each wait fires once). In a
    workspace without the form, a due wait only tells the agents again. Response targets missed meanwhile are
    marked, counted and told in the same step (each once)."""
    fired: list[dict[str, Any]] = []
    for workspace in deployment.config.workspaces:
        form = forms(workspace) if workspace.handover.contact_form else None
        sent, resolved, missed, reminded = deployment.store.fire_timers(
            workspace.id, text=form_texts(workspace), form=form, limit=500,
            resolved_text=texts.every("closed", workspace.language, workspace.texts), sla=lifecycle.sla(workspace),
            assignment=lifecycle.assignment(workspace))
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
        for item in reminded:
            metrics.REMINDERS.labels("escalated" if item.get("escalated") else "reminder").inc()
            log.info("conversation %s: nobody took it; %s", item["conversation"],
                     "escalated to the admins" if item.get("escalated") else f"reminder {item.get('reminder')}",
                     extra={"workspace": workspace.id, "conversation": item["conversation"]})
        for item in missed:
            metrics.SLA_BREACHES.labels(item["kind"]).inc()
            after = f"; back to {item['now_owner']}" if item.get("requeued") else ""
            log.info("conversation %s: the %s response target was missed (owner %s)%s", item["conversation"],
                     item["kind"], item["owner"], after,
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


def extract(text: str, region: str | None = None) -> dict[str, str]:
    """The contact details (name, phone, email) found in a free-text reply; see `read_reply`."""
    reply = read_reply(text, region)
    return {field: value for field, value in reply.items() if field in ("name", "phone", "email")
            and isinstance(value, str)}


class Reply(TypedDict, total=False):
    """What a free-text reply to the contact form holds: the details, the rest as the message, and what it is when it
    holds neither details nor a name (`declined`: "no thanks"; `garbage`: emoji, punctuation, a keyboard mash)."""
    name: str
    phone: str
    email: str
    message: str
    declined: bool
    garbage: bool


def read_reply(text: str, region: str | None = None) -> Reply:
    """Read a reply to the text form, in any of the six languages: a valid email; a valid phone number (national
    formats read as numbers of `region`, the customer's own country where it is known); a name, said alone ("Maria
    Lopez"), introduced ("I'm Maria", "my name is maria", "me llamo Ana") or labelled ("name: Maria"); and what
    is left, less greetings and filler ("it's", "my email is"), as the message."""
    masked = text  # the text with what was read blanked out (same length, so offsets hold)

    def blank(start: int, end: int) -> None:
        nonlocal masked
        masked = masked[:start] + "\n" * (end - start) + masked[end:]

    found: Reply = {}
    for match in _EMAIL_IN_TEXT.finditer(text):
        email, problem = _email(match.group().rstrip("."))
        if not problem:
            found.setdefault("email", email)
            blank(match.start(), match.end())
    for number in phonenumbers.PhoneNumberMatcher(masked, region):
        found.setdefault("phone", phonenumbers.format_number(number.number, phonenumbers.PhoneNumberFormat.E164))
        blank(number.start, number.end)
    details = "phone" in found or "email" in found
    local = found.get("email", "").split("@")[0].lower()
    pieces = [p.strip() for p in _SEPARATORS.split(masked) if p and p.strip()]
    rest: list[str] = []
    for piece in pieces:
        label = _LABEL.match(piece)
        if label:
            field, piece = _LABEL_FIELD[label.group(1).lower()], piece[label.end():].strip()
            if field == "message" and piece:
                found.setdefault("message", piece)
                continue
            if field == "name" and "name" not in found:
                name, piece = _name_words(piece, lower_ok=True)
                found.update({"name": name} if name else {})
        elif "name" not in found and not _only_filler(piece):
            name, piece = _introduced(_GREETING.sub("", piece), details, local)
            if not name and (details or len(pieces) == 1) and _bare_name(piece, local):
                name, piece = _bare_name(piece, local), ""
            found.update({"name": name} if name else {})
        piece = _JOINING.sub("", piece.strip(" -–—:"))
        if piece.strip(".!?") and not _only_filler(piece):
            rest.append(piece)
    if rest and "message" not in found:
        found["message"] = " ".join(p if p[-1] in ".!?" or i == len(rest) - 1 else p + "," for i, p in enumerate(rest))
    if not details and "name" not in found:
        plain = " ".join(text.split())
        if _DECLINED.match(plain):
            found["declined"] = True
        elif not re.search(r"[^\W\d_]{2}", plain) or (" " not in plain and _CONSONANTS.search(plain)):
            found["garbage"] = True
    if "message" in found:
        found["message"] = found["message"][: LIMITS["message"]]
    return found


def _only_filler(piece: str) -> bool:
    words = [w.strip(".!?:()\"'¡¿").lower() for w in piece.split()]
    return all(not w or w in _FILLER for w in words)


def _name_words(text: str, lower_ok: bool) -> tuple[str, str]:
    """The name that `text` starts with (up to four words, with particles such as "da", "van") and what follows it;
    ("", text) when it starts with none. Lower-case words count only when `lower_ok`."""
    words = text.split()
    taken: list[str] = []
    for word in words:
        bare = word.rstrip(".!")
        if bare.lower() in _PARTICLES and taken:
            taken.append(bare.lower())
            continue
        if not _NAME_WORD.match(bare) or bare.lower() in _NOT_NAMES or len(taken) >= 4:
            break
        if not (bare[:1].isupper() or lower_ok):
            break
        taken.append(bare[:1].upper() + bare[1:].lower() if bare.islower() or bare.isupper() else bare)
    used = len(taken)
    while taken and taken[-1] in _PARTICLES:
        taken.pop()
        used -= 1
    if not taken or len(" ".join(taken)) > LIMITS["name"]:
        return "", text
    return " ".join(taken), " ".join(words[used:])


def _introduced(piece: str, details: bool, local: str) -> tuple[str, str]:
    """A name introduced in `piece` ("my name is maria", "I'm Maria"), and what follows it in the piece."""
    called = _CALLED.match(piece)
    if called:
        return _name_words(piece[called.end():], lower_ok=True)
    am = _AM.match(piece)
    if not am:
        return "", piece
    after = piece[am.end():]
    name, rest = _name_words(after, lower_ok=False)
    if name:
        return name, rest
    name, rest = _name_words(after, lower_ok=True)  # "i'm maria": only beside the details, or its email
    words = name.lower().split()
    if name and (any(len(w) > 2 and w in local for w in words)
                 or (details and not rest and len(words) <= 2 and not any(w.endswith(("ing", "ed")) for w in words))):
        return name, rest
    return "", piece


def _bare_name(piece: str, local: str) -> str:
    """`piece` when it is a name and nothing else: capitalised words, or lower-case ones its email repeats."""
    name, rest = _name_words(piece, lower_ok=True)
    if not name or rest.strip(".!"):
        return ""
    written = [w for w in piece.split() if w.lower() not in _PARTICLES]
    if all(w[:1].isupper() for w in written) or any(len(w) > 2 and w.lower().strip(".!") in local for w in written):
        return name
    return ""


def capture(deployment: Deployment, workspace_id: str, conversation_id: str, details: dict[str, str],
            turn: TurnStamp | None = None, language: str | None = None) -> str:
    """Store the details in Contacts, confirm to the customer (in `language`, else in the conversation's as stored:
    the web form's path, which reads nothing of it; the workspace's wording first), and notify every agent; the
    contact id."""
    name = details.get("name", "")
    workspace = deployment.workspace(workspace_id)
    ways = [v for v in (details.get("phone"), details.get("email")) if v]

    def confirm(said_in: str) -> str:
        reach = f" {texts.OR.get(said_in, 'or')} ".join(ways)
        return texts.say("confirmation", said_in, workspace.texts, name=f", {name}" if name else "", reach=reach)

    confirmation: Said = confirm(language) if language else \
        {**{each: confirm(each) for each in texts.LANGUAGES}, "default": workspace.language}
    reach = " or ".join(ways)
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
        return _follow_up(deployment, workspace, conversation, turn, language)
    contact = deployment.store.contact(workspace.id, conversation["contact"])
    reply = read_reply(text, _region(contact.get("phone", "")))
    details = {"name": reply.get("name") or conversation.get("form_name", "") or contact.get("name", ""),
               "phone": reply.get("phone", ""), "email": reply.get("email", ""), "message": reply.get("message", "")}
    if not details["phone"] and not details["email"] and reply.get("name") and contact.get("phone"):
        details["phone"] = contact["phone"]  # a name alone on a channel that knows their number (WhatsApp)
    if details["phone"] or details["email"]:
        capture(deployment, workspace.id, conversation_id, {k: v for k, v in details.items() if v}, turn, language)
        return "captured contact details"
    if reply.get("name"):
        asked = texts.say("ask_for_reach", language, workspace.texts, name=reply["name"])
        deployment.store.post(workspace.id, conversation_id, "system", asked,
                              kind="notice", turn=turn, form_name=reply["name"])
        return "asked for a phone number or email"
    if reply.get("declined"):  # kept for the team, who may still pick the chat up; not asked again
        deployment.store.post(workspace.id, conversation_id, "system", texts.say("form_declined", language,
                              workspace.texts), kind="notice", turn=turn, noted_at=deployment.store.now_ms())
        return "the customer declined to leave contact details"
    if looks_like_details(text):
        deployment.store.post(workspace.id, conversation_id, "system",
                              texts.say("not_understood", language, workspace.texts), kind="notice", turn=turn)
        return "asked again for contact details"
    if reply.get("garbage"):
        deployment.store.finish(workspace.id, conversation_id, turn)
        return "recorded (no words to read)"
    return _noted(deployment, workspace, conversation, text, details, turn, language)


def _region(phone: str) -> str | None:
    """The country of a known phone number, to read the national numbers the customer writes ("06 12 34 56 78")."""
    try:
        return phonenumbers.region_code_for_number(phonenumbers.parse(phone)) if phone else None
    except phonenumbers.NumberParseException:
        return None


def looks_like_details(text: str) -> bool:
    """Is this an attempt at contact details (an address, a number), rather than a question or a remark for the
    team? Only an attempt is answered with what is wrong with it."""
    return "@" in text or sum(char.isdigit() for char in text) >= 5


def _noted(deployment: Deployment, workspace: WorkspaceConfig, conversation: Conversation, text: str,
           details: dict[str, str], turn: TurnStamp, language: str) -> str:
    """A question or a remark while the form is out: kept for the team. Where the channel already tells how to reach
    the customer (WhatsApp's number), that is their contact; otherwise they are asked once for a way to reach them."""
    conversation_id = conversation["id"]
    contact = deployment.store.contact(workspace.id, conversation["contact"])
    if contact.get("phone"):
        found = {**{k: v for k, v in details.items() if v}, "phone": contact["phone"],
                 "message": text[: LIMITS["message"]]}
        capture(deployment, workspace.id, conversation_id, found, turn, language)
        return "kept the message with the customer's known number"
    if conversation.get("noted_at"):
        deployment.store.finish(workspace.id, conversation_id, turn)
        return "recorded (asked for contact details already)"
    notice = texts.say("noted" if conversation.get("delivers") == "1" else "noted_with_form", language, workspace.texts)
    deployment.store.post(workspace.id, conversation_id, "system", notice, kind="notice", turn=turn,
                          noted_at=deployment.store.now_ms())
    return "told the customer the team will see the message, and asked how to reach them"


def _follow_up(deployment: Deployment, workspace: WorkspaceConfig, conversation: Conversation,
               turn: TurnStamp, language: str = "en") -> str:
    last = int(conversation.get("followed_up_at") or conversation.get("captured_at") or 0)
    now = deployment.store.now_ms()
    if now - last < FOLLOW_UP_EVERY_MS and conversation.get("followed_up_at"):
        deployment.store.finish(workspace.id, conversation["id"], turn)
        return "recorded (followed up recently)"
    contact = deployment.store.contact(workspace.id, conversation["contact"])
    reach = f" {texts.OR.get(language, 'or')} ".join(v for v in (contact.get("phone"), contact.get("email")) if v)
    said = texts.say("follow_up", language, workspace.texts, reach=reach) if reach else \
        texts.say("follow_up_no_reach", language, workspace.texts)
    deployment.store.post(workspace.id, conversation["id"], "system", said, kind="notice", turn=turn,
                          followed_up_at=now)
    return "told the customer the team will follow up"
