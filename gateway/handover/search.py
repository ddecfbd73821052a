"""Search over conversations: the terms a text is indexed under, and the query that reads the index.

The index lives in Redis beside the conversations and is written by the state script in the same atomic step as the
message or the contact detail it indexes (so it follows failover, retention and deletion with them): SEARCH holds, per
term, the conversations that contain it, scored by the time of the latest message with it; SEARCH_TERMS holds, per
conversation, each term's latest message ("m:<term>") and the customer's own terms ("c:<term>", their name, number
and email, which also match by their beginning: "ann" finds Anna). This module turns text into terms, the same way
for what is indexed and for a query, and runs the query (search.lua: one round trip, read-only).

A query matches conversations holding every one of its terms, newest match first. Words of messages match whole
(accents and case aside: "Müller" finds "muller"); a number matches by its beginning or its end ("612 345 678" finds
+34 612 345 678).
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from typing import Any

import redis
from redis.exceptions import NoScriptError

from gateway import keys

MAX_TERMS = 200  # distinct terms one text is indexed under (a pasted log is not indexed whole)
MAX_TERM = 40  # characters; a longer "word" is no word anyone types
MAX_QUERY_TERMS = 8
SCAN_BUDGET = 2_000  # candidates one query call looks at before it answers with what it found and a cursor
_WORD = re.compile(r"[^\W_]+")
_EMAIL = re.compile(r"[^\s@<>()\"',;]+@[^\s@<>()\"',;]+\.[^\s@<>()\"',;]+")
_NUMBER = re.compile(r"\+?[\d][\d\s().-]{4,}\d")
_PREFIX_FROM = 2  # a customer's name matches from its first two letters
_DIGITS_FROM = 4  # a number from its first (or last) four digits
SEARCH_SCRIPT = resources.files("gateway.handover").joinpath("search.lua").read_text(encoding="utf-8")
SEARCH_SHA = hashlib.sha1(SEARCH_SCRIPT.encode()).hexdigest()  # noqa: S324 - the name Redis gives it


def fold(text: str) -> str:
    """Lower case without accents: what both sides of a match compare."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()


def _numbers(text: str) -> list[str]:
    return [digits for found in _NUMBER.findall(text) if len(digits := re.sub(r"\D", "", found)) >= _DIGITS_FROM]


def terms(text: str) -> list[str]:
    """The terms a message's text is indexed under (and a query's terms): its words, its e-mail addresses whole, and
    its phone numbers as one run of digits."""
    folded = fold(text)
    found = dict.fromkeys(_numbers(folded))
    found.update(dict.fromkeys(found_email.lower() for found_email in _EMAIL.findall(folded)))
    found.update(dict.fromkeys(word for word in _WORD.findall(folded) if len(word) >= 2 or word.isdigit()))
    return [term for term in found if len(term) <= MAX_TERM][:MAX_TERMS]


def customer_terms(*details: str) -> list[str]:
    """The terms a customer is found by (name, address, phone, email): each word also by its beginning, each number
    also by its beginning and its end."""
    found: dict[str, None] = {}
    for detail in details:
        if not detail:
            continue
        for term in terms(detail):
            found[term] = None
            if term.isdigit():
                found.update(dict.fromkeys(term[:n] for n in range(_DIGITS_FROM, len(term))))
                found.update(dict.fromkeys(term[-n:] for n in range(_DIGITS_FROM, len(term))))
            elif "@" not in term:
                found.update(dict.fromkeys(term[:n] for n in range(_PREFIX_FROM, min(len(term), 12))))
    return list(found)[:MAX_TERMS]


def query_terms(query: str) -> list[str]:
    """A query's terms, rarest-looking first is the script's business; a number typed with spaces is one term."""
    folded = fold(query)
    compact = re.sub(r"[\s().+-]", "", folded)
    if compact.isdigit() and len(compact) >= _DIGITS_FROM:
        return [compact]
    return terms(query)[:MAX_QUERY_TERMS]


@dataclass(frozen=True)
class Filters:
    """What a search is narrowed to: status (open | closed), owner (ai | none | agent:<id>), channel, a label, and the
    match's time (ms, inclusive)."""

    status: str = ""
    owner: str = ""
    channel_name: str = ""
    label: str = ""
    since: int | None = None
    until: int | None = None


@dataclass(frozen=True)
class Hit:
    conversation: dict[str, Any]  # the conversation's hash, as stored
    message_id: str  # the newest message holding a term of the query ("" when only the customer's details match)
    message: dict[str, Any] | None = None  # that message: id, author, kind, text, created_at


def _message(stored: Any) -> dict[str, Any] | None:
    if not stored or not isinstance(stored, dict) or "id" not in stored:
        return None
    return {"id": stored["id"], "author": stored.get("author", ""), "kind": stored.get("kind", "message"),
            "text": stored.get("text", ""), "created_at": int(stored["id"].split("-", 1)[0])}


def search(client: redis.Redis, workspace_id: str, query: str, filters: Filters, cursor: str = "",
           limit: int = 20) -> tuple[list[Hit], str]:
    """The conversations matching `query`, newest match first, after `cursor`; the next page's cursor ("" at the end).
    A page may hold fewer than `limit` hits (and a cursor) when the matches are sparse among many candidates."""
    wanted = query_terms(query)
    if not wanted:
        return [], ""
    term_keys = [keys.key(keys.SEARCH, workspace_id=workspace_id, term=term) for term in wanted]
    label_key = keys.key(keys.LABELED, workspace_id=workspace_id, label=filters.label) if filters.label else ""
    prefix = keys.key(keys.CONVERSATION, workspace_id=workspace_id, conversation_id="")
    after = parse_cursor(cursor) if cursor else None
    argv: list[str | int] = [
            len(term_keys), prefix, json.dumps(wanted), after[0] if after else "", after[1] if after else "",
            after[2] if after else "", limit, SCAN_BUDGET, filters.status, filters.owner, filters.channel_name,
            "" if filters.since is None else filters.since, "" if filters.until is None else filters.until,
            keys.SEARCH_TERMS.removeprefix(keys.CONVERSATION), keys.MESSAGES.removeprefix(keys.CONVERSATION)]
    all_keys = [*term_keys, *([label_key] if label_key else [])]
    try:
        raw: Any = client.evalsha(SEARCH_SHA, len(all_keys), *all_keys, *argv)
    except NoScriptError:
        client.script_load(SEARCH_SCRIPT)
        raw = client.evalsha(SEARCH_SHA, len(all_keys), *all_keys, *argv)
    answer = json.loads(raw)
    hits = [Hit(row[1], row[2], _message(row[3])) for row in answer["hits"] or [] if row[1]]
    last = answer.get("last")
    next_cursor = f"{int(last[0])}:{last[1]}:{int(last[2])}" if answer["more"] and last else ""
    return hits, next_cursor


def parse_cursor(cursor: str) -> tuple[int, str, int] | None:
    """A search's cursor ("<score>:<conversation>:<term>"), or None when it is not one."""
    parts = cursor.split(":")
    if len(parts) != 3 or not all(p.isascii() and p.isdigit() and 0 < len(p) <= 20 for p in parts):
        return None
    if int(parts[2]) >= MAX_QUERY_TERMS:
        return None
    return int(parts[0]), parts[1], int(parts[2])


def indexed_terms(client: redis.Redis, workspace_id: str, conversation_id: str) -> dict[str, str]:
    """What a conversation is indexed under ("m:<term>" → message, "c:<term>" → "1"): for tests and `baton` tools."""
    found: Any = client.hgetall(keys.key(keys.SEARCH_TERMS, workspace_id=workspace_id,
                                         conversation_id=conversation_id))
    return dict(found)


def union(*groups: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(term for group in groups for term in group))[:MAX_TERMS]
