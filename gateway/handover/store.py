"""The handover's store: one typed method per operation of the state script, and the reads the APIs and the AI use.

Every change goes through `state.lua` (one atomic step, see its header for the states and transitions); a refused
change raises `Refused` with the script's reason. Reads are plain Redis reads of the same keys.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import re
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from importlib import resources
from typing import Any, Literal, NamedTuple, TypedDict

import redis
import redis.asyncio as aioredis
from redis.exceptions import NoScriptError

from gateway import keys, reports, schema
from gateway.errors import BatonError, CommitUnknown, NotFound, Unavailable
from gateway.handover import search
from gateway.redis_server import describe_error

log = logging.getLogger(__name__)

Author = Literal["customer", "ai", "agent", "system"]
#: Why the state script refused an operation (its header lists which operation answers which; a test holds both).
RefusalCode = Literal["not_found", "closed", "conflict", "stale_turn", "not_owner", "suppressed", "ai_unpublished",
                      "client_id_reused", "not_settable", "no_form", "no_agent", "busy", "not_holder", "not_resendable",
                      "open", "schema_mismatch", "unknown_operation", "not_closed", "newer_open", "no_label",
                      "too_many_labels", "no_contact", "contact_changed",
                      "not_snoozed"]
Owner = str  # "ai" | "none" | "agent:<id>"
#: overdue: the open chats past a response target, the most overdue first
VIEWS = ("mine", "waiting", "ai", "all", "closed", "overdue", "snoozed")


class Conversation(TypedDict, total=False):
    id: str
    channel: str
    sender: str
    contact: str
    customer: str  # how to call the customer: their profile name or their address on the channel
    status: Literal["open", "closed"]
    owner: Owner
    epoch: int
    created_at: int
    updated_at: int
    last_message_at: int
    last_text: str
    last_author: str
    profile_name: str
    previous: str
    delivers: str
    ai_cursor: str
    last_customer: str
    offer: bool
    unknown_streak: int
    waits: int
    waiting_since: int
    form_state: Literal["", "sent", "done"]
    form_sent_at: int
    captured_at: int
    followed_up_at: int
    noted_at: int  # a question asked while the form was out was acknowledged (once per form)
    customer_at: int  # the customer's latest message, as the provider stamped it (ms): opens the reply window
    form_name: str
    handover_reason: str
    handover_summary: str
    handover_at: int
    handovers: int
    handed_back_at: int
    closed_at: int
    closed_by: str
    team: str  # the team its handovers go to (the channel's or the workspace's), "" for every agent
    assigned_at: int  # handed to an agent by automatic assignment
    snoozed_until: str  # while snoozed: when it wakes (ms), or "next" (the customer's next message)
    labels: str  # JSON list of its labels (gateway/handover/labels.py)
    day: str  # the UTC day it started (YYYY-MM-DD), for the reports; "" before they were kept
    outcome: Literal["open", "ai_resolved", "handed_over", "abandoned"]  # see gateway/reports.py
    csat: int  # the customer's rating, 1-5
    csat_by: Literal["ai", "human"]  # who it is attributed to
    csat_agent: str  # the agent who held the conversation when it was rated
    csat_comment: str
    csat_at: int
    csat_asked: int  # when the rating question was sent (WhatsApp)
    language: str  # the customer's, as last read (absent: the workspace's); see LANGUAGE in state.lua
    answered_at: int  # a human's latest public reply
    after_hours: int  # started waiting outside business hours (ms), while nobody has taken it
    sla_kind: Literal["first", "next"]  # the response target that runs (sla:), with its deadline and its start
    sla_due: int
    sla_since: int
    sla_target: int
    sla_breached: int  # when the running target was missed


class Message(TypedDict, total=False):
    id: str
    author: Author
    text: str
    created_at: int
    kind: str  # message | notice | handover | assignment | contact_form | contact_captured | closed | …
    visibility: Literal["public", "internal"]
    agent: str
    agent_name: str
    data: dict[str, Any]
    media: list[dict[str, str]]
    rich: dict[str, Any]
    delivery: str  # for outgoing messages on channels that send: pending, sending, sent, delivered, unknown…
    delivery_error: str  # why a delivery failed or is unknown
    delivery_final: bool  # failed for good: sending it again cannot help


#: What Baton says to a customer: one text, or one per language with the workspace's as "default"
#: (gateway.texts.every), of which the state script picks the conversation's.
Said = str | dict[str, str]


@dataclass(frozen=True)
class TurnStamp:
    """The AI turn a commit comes from: the cursor it read, the newest customer message it read, its lock, and the
    customer's language it read (stored on the conversation by the commit: no round trip of its own)."""

    expect: str
    upto: str
    lock: str
    language: str = ""


@dataclass(frozen=True)
class CustomerMessage:
    """A customer message to record, as the request path normalised it."""

    channel: str
    sender: str
    provider_id: str
    text: str
    customer: str  # how to call them: profile name or address on the channel
    delivers: bool  # the channel sends replies out (outbox) rather than serving them from the history
    published: bool  # the configured default of the AI agent's publication
    timeout_ms: int  # the no-human wait, should the conversation start waiting for a human
    profile_name: str = ""
    phone: str = ""
    media: list[dict[str, str]] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    dedupe_ttl: int = 7 * 24 * 3600  # seconds; providers retry for days (Meta), Twilio within seconds
    assignment: dict[str, Any] | None = None  # the configured assignment (gateway.handover.lifecycle.assignment)
    team: str = ""  # the team its handovers go to ("" for every agent)
    sent_at_ms: int = 0  # when the customer sent it, by the provider's clock; 0: now
    language: str = ""  # the message's language when it is clear: kept by a conversation that has none yet
    sla: dict[str, Any] | None = None  # the response targets (gateway.handover.lifecycle.sla)


class Due(NamedTuple):
    """What the timers did: contact forms sent, AI conversations resolved, response targets missed."""

    fired: list[dict[str, Any]]
    resolved: list[dict[str, Any]]
    breached: list[dict[str, Any]]
    reminded: list[dict[str, Any]]  # [{"conversation", "reminder": n} | {"conversation", "escalated": true}]


@dataclass(frozen=True)
class Recorded:
    duplicate: bool
    conversation: str
    message: str
    created: bool = False
    owner: Owner = ""
    rated: int = 0  # the customer's answer to a rating question (1-5), recorded on their last conversation


@dataclass(frozen=True)
class Page:
    """A page of a conversation's history, oldest first; `next_before` pages back (when `has_more`)."""

    messages: list[Message]
    has_more: bool
    next_before: str


_PAGE_READS = 20  # LRANGEs one page may take to gather its public messages


@dataclass(frozen=True)
class Outgoing:
    """The next message of an outbox to send, to whom and through which channel."""

    message: Message
    recipient: str
    channel_name: str
    customer_at: int = 0  # the customer's latest message (ms), as the provider stamped it; 0: none recorded
    #: An earlier send of it had no known outcome: ask the provider whether it has it before sending it again.
    maybe_sent: bool = False
    #: Queued again by Baton to ask the provider (not by an agent): sent only if the provider surely lacks it.
    auto: bool = False
    #: When the first send of it began (ms), while its outcome is unknown: where to look for it at the provider.
    attempted_at: int = 0


class Refused(BatonError):
    """The state script refused a change; `code` says why (not_found, closed, conflict, stale_turn…)."""

    def __init__(self, code: RefusalCode, conversation_id: str, answer: dict[str, Any]) -> None:
        self.code: RefusalCode = code
        self.status = 404 if code in ("not_found", "no_contact") else 409
        owner = answer.get("owner", "")
        details = {k: v for k, v in answer.items() if k != "error" and v not in ("", None)}
        reason = _reason(code, conversation_id, owner)
        if code == "not_resendable" and details.get("failure"):
            reason = f"this message failed for good, sending it again cannot help ({details['failure']})"
        super().__init__(reason, **details)


def _reason(code: RefusalCode, conversation_id: str, owner: str) -> str:
    reasons = {
        "not_found": f"no conversation {conversation_id!r}",
        "closed": f"conversation {conversation_id} is closed",
        "conflict": f"conversation {conversation_id} is assigned to {owner}",
        "ai_unpublished": "the AI agent is unpublished; publish it before handing conversations back to it",
        "no_form": "no contact form is pending in this conversation",
        "not_resendable": "only a message whose delivery failed or is unknown can be sent again, and not one that "
                          "failed for good (sending it again cannot help)",
        "client_id_reused": "this client_id was already used for a reply in another conversation",
        "not_closed": f"conversation {conversation_id} is not closed",
        "newer_open": "the customer has started another conversation since, which is open: continue there",
        "not_settable": "the operation may not set that field of a conversation",
        "no_label": "no such label in this workspace: an admin adds labels in Settings",
        "too_many_labels": f"conversation {conversation_id} has as many labels as it may hold",
        "no_contact": "no such contact",
        "not_snoozed": f"conversation {conversation_id} is not snoozed",
        "contact_changed": "the contact changed since it was read (details left meanwhile?): read it again",
    }
    return reasons.get(code, f"conversation {conversation_id}: {code} (owner {owner or 'nobody'})")


def render_script() -> str:
    """state.lua with the key templates of gateway/keys.py filled in."""
    source = resources.files("gateway.handover").joinpath("state.lua").read_text(encoding="utf-8")
    table = ", ".join(f"{name} = {json.dumps(template)}" for name, template in keys.templates().items())
    placeholder = "local TEMPLATES = {} -- rendered from gateway/keys.py"
    version = "local SCHEMA_VERSION = '0' -- rendered from gateway/schema.py"
    buckets = "local BUCKETS = {} -- rendered from gateway/reports.py"
    assert placeholder in source and version in source and buckets in source
    source = source.replace(version, f"local SCHEMA_VERSION = '{schema.VERSION}'")
    source = source.replace(buckets, f"local BUCKETS = {{{', '.join(str(b) for b in reports.BUCKETS)}}}")
    return source.replace(placeholder, f"local TEMPLATES = {{{table}}}")


SCRIPT = render_script()
PAGE_SCRIPT = resources.files("gateway.handover").joinpath("page.lua").read_text(encoding="utf-8")


def _payload(arguments: dict[str, Any]) -> str:
    return json.dumps({name: value for name, value in arguments.items() if value is not None}, ensure_ascii=False)


def _checked(replies: list[Any], wait: int, conversation_id: str, aof: bool = False) -> dict[str, Any]:
    """The answer of a pipelined operation, once its WAITAOF (if `aof`) found it in the primary's append-only file and
    its WAIT (if any) counted enough replicas."""
    if isinstance(replies[0], Exception):
        raise replies[0]
    answer = _answer(replies[0], conversation_id)
    if wait and (isinstance(replies[-1], Exception) or int(replies[-1]) < wait):
        raise Unavailable(f"recorded, but not yet on {wait} replica(s): try again (it will not be recorded twice)")
    if aof and not _on_disk(replies[1]):
        raise _NoWaitAof(answer)
    return answer


class _NoWaitAof(Exception):
    """The server has no WAITAOF (Redis before 7.2): the AOF's write status stands in for it. `answer` is the
    operation's, which was made."""

    def __init__(self, answer: dict[str, Any]) -> None:
        super().__init__("unknown command 'WAITAOF'")
        self.answer = answer


def _on_disk(reply: Any) -> bool:
    """WAITAOF's reply: True once the primary wrote and fsynced the write to its append-only file, False when the
    server has no WAITAOF; else Unavailable."""
    if isinstance(reply, Exception):
        if "unknown command" in str(reply).lower():
            return False
        if "appendonly" in str(reply).lower():
            raise Unavailable("durability.aof_acks is on but the Redis server keeps no append-only file "
                              "(appendonly no): nothing can be acknowledged as on its disk", redis_error=str(reply))
        raise Unavailable(f"recorded, but its write to disk is unconfirmed: {describe_error(reply)}: try again "
                          "(it will not be recorded twice)")
    if int(reply[0]) < 1:
        raise Unavailable("recorded, but not yet written to the Redis server's disk (its append-only file: a full "
                          "disk?): try again (it will not be recorded twice)")
    return True


AOF_READ_EVERY_S = 1.0  # INFO persistence at most this often, on a server without WAITAOF
AOF_FAILED = ("the Redis server cannot write its append-only file (aof_last_write_status: err; a full disk?): "
              "nothing is acknowledged until it can")


class AofStatus:
    """On a server without WAITAOF: the AOF's last write status, read at most once a second (INFO persistence), not
    per request. While it is `err`, durable operations are refused (503 with the reason) instead of acknowledged."""

    def __init__(self) -> None:
        self.failing = False
        self.read_at = -AOF_READ_EVERY_S
        self.reads = 0

    def due(self) -> bool:
        return time.monotonic() - self.read_at >= AOF_READ_EVERY_S

    def update(self, info: dict[str, Any]) -> None:
        self.read_at = time.monotonic()
        self.reads += 1
        failing = str(info.get("aof_last_write_status", "ok")) != "ok"
        if failing and not self.failing:
            log.error("%s", AOF_FAILED)
        elif self.failing and not failing:
            log.warning("the Redis server writes its append-only file again: acknowledging again")
        self.failing = failing

    def check(self) -> None:
        if self.failing:
            raise Unavailable(AOF_FAILED)


def _answer(raw: Any, conversation_id: str = "") -> dict[str, Any]:
    answer: dict[str, Any] = json.loads(raw)
    if not answer.pop("ok"):
        if answer["error"] == "schema_mismatch":
            state = schema.State(int(answer["schema"] or 0) or None, int(answer["migrating"] or 0) or None)
            raise schema.SchemaMismatch(schema.describe(state), schema=state.version, expected=schema.VERSION)
        raise Refused(answer["error"], conversation_id, answer)
    return answer


def _customer_payload(message: CustomerMessage) -> dict[str, Any]:
    payload = dict(vars(message))  # shallow: it is serialised at once (asdict's deep copy was 5% of a webhook)
    payload["media"] = payload["media"] or None
    payload["data"] = payload["data"] or None
    payload["terms"] = search.terms(message.text) or None
    payload["customer_terms"] = list(_customer_terms(message.customer, message.profile_name, message.phone,
                                                     message.sender)) or None
    return payload


@functools.lru_cache(maxsize=4096)
def _customer_terms(customer: str, profile_name: str, phone: str, sender: str) -> tuple[str, ...]:
    """A customer's terms, once per customer rather than once per message (most of a webhook's share of search)."""
    number = sender if _PHONE.fullmatch(sender) else ""
    return tuple(search.customer_terms(customer, profile_name, phone, number))


_PHONE = re.compile(r"\+?[0-9]{6,15}")


PAGE_SHA = hashlib.sha1(PAGE_SCRIPT.encode()).hexdigest()  # noqa: S324 - the name Redis gives the script


class Store:
    """All conversation state of one deployment, through one synchronous Redis client (decoded responses).
    `replicas`: operations run `durable` are acknowledged by that many replicas within `timeout_ms`, or raise
    Unavailable (the write stands on the primary; the caller retries)."""

    def __init__(self, client: redis.Redis, replicas: int = 0, timeout_ms: int = 500, aof: bool = False) -> None:
        self.redis = client
        self.sha = _sha(SCRIPT)
        self.replicas = replicas
        self.timeout_ms = timeout_ms
        self.aof = aof  # durable operations wait for the primary's append-only file (WAITAOF)
        self.waitaof = True  # until the server says it has none
        self.aof_status = AofStatus()
        #: What config.yaml gives some operations, by workspace and operation (gateway.reports.settings).
        self.settings: dict[str, dict[str, dict[str, Any]]] = {}

    def run(self, operation: str, workspace_id: str, conversation_id: str = "", durable: bool = False,
            **arguments: Any) -> dict[str, Any]:
        """Run one operation of the state script; its answer, or Refused."""
        if conversation_id:
            arguments["conversation"] = conversation_id
        given = self.settings.get(workspace_id, {}).get(operation)
        if given:
            arguments = {**given, **arguments}
        argv = (operation, workspace_id, _payload(arguments))
        wait = self.replicas if durable else 0
        aof = self.aof and durable
        try:
            if aof and not self.waitaof:
                self._check_aof()
                aof = False
            try:
                return self._run(argv, wait, conversation_id, aof)
            except _NoWaitAof as exc:  # recorded; the server has no WAITAOF: its AOF status decides, from now on
                log.warning("the Redis server has no WAITAOF (%s): durability.aof_acks reads its append-only file's "
                            "write status instead, once a second", exc)
                self.waitaof = False
                self._check_aof()
                return exc.answer
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            # Sent, perhaps run, its answer lost: the caller decides (an idempotency key, a turn's stamp).
            raise CommitUnknown(f"{describe_error(exc)}: the change may or may not have been made") from exc

    def _check_aof(self) -> None:
        if self.aof_status.due():
            self.aof_status.update(self.redis.info("persistence"))
        self.aof_status.check()

    def _run(self, argv: tuple[str, str, str], wait: int, conversation_id: str, aof: bool = False) -> dict[str, Any]:
        if not wait and not aof:  # the common case: one command
            try:
                return _answer(self.redis.evalsha(self.sha, 0, *argv), conversation_id)
            except NoScriptError:  # a new or restarted server: load the script and run it once more
                self.redis.script_load(SCRIPT)
                return _answer(self.redis.evalsha(self.sha, 0, *argv), conversation_id)
        for attempt in (1, 2):
            with self.redis.pipeline(transaction=False) as pipe:  # one connection: WAIT(AOF) covers this write
                pipe.evalsha(self.sha, 0, *argv)
                if aof:
                    pipe.execute_command("WAITAOF", 1, 0, self.timeout_ms)
                if wait:
                    pipe.execute_command("WAIT", wait, self.timeout_ms)
                replies = pipe.execute(raise_on_error=False)
            if not isinstance(replies[0], NoScriptError) or attempt == 2:
                break
            self.redis.script_load(SCRIPT)  # a new or restarted server: load the script and run it once more
        return _checked(replies, wait, conversation_id, aof)

    # --- the customer ------------------------------------------------------------------------------------------

    def inbound(self, workspace_id: str, message: CustomerMessage) -> Recorded:
        return Recorded(**self.run("inbound", workspace_id, **_customer_payload(message)))

    def capture(self, workspace_id: str, conversation_id: str, details: dict[str, str], summary: str,
                confirmation: Said, turn: TurnStamp | None = None) -> str:
        """Store contact details in Contacts (the form, or details a turn read in a text); the contact id."""
        answer = self.run("capture", workspace_id, conversation_id, details=details, summary=summary,
                          confirmation=confirmation, turn=_stamp(turn),
                          terms=search.customer_terms(*(details.get(k, "") for k in ("name", "email", "phone"))))
        return str(answer.get("contact", ""))

    # --- the AI's turn -----------------------------------------------------------------------------------------

    def hand_over(self, workspace_id: str, conversation_id: str, turn: TurnStamp, reason: str, route: str, summary: str,
                  notice: Said, agent_name: str, timeout_ms: int, assignment: dict[str, Any] | None = None,
                  sla: dict[str, Any] | None = None) -> int:
        """The AI unassigns itself (and automatic assignment may hand the chat to an agent at once); the number of
        handovers of the conversation so far."""
        answer = self.run("hand_over", workspace_id, conversation_id, turn=_stamp(turn), reason=reason, route=route,
                          summary=summary, notice=notice, agent_name=agent_name, timeout_ms=timeout_ms,
                          assignment=assignment, sla=sla)
        return int(answer.get("handovers", 0))

    def finish(self, workspace_id: str, conversation_id: str, turn: TurnStamp, **fields: int) -> None:
        """End a turn with nothing to say, setting the conversation's AI fields (offer, unknown_streak)."""
        self.run("finish", workspace_id, conversation_id, turn=_stamp(turn), set=fields or None)

    # --- posting -----------------------------------------------------------------------------------------------

    def post(self, workspace_id: str, conversation_id: str, author: Author, text: str, *, turn: TurnStamp | None = None,
             agent_id: str | None = None, agent_name: str | None = None, kind: str | None = None,
             visibility: str | None = None, rich: dict[str, Any] | None = None, data: dict[str, Any] | None = None,
             notice: Said | None = None, published: bool | None = None, client_id: str | None = None,
             more: Sequence[str] = (), answer: dict[str, Any] | None = None, **fields: int | str) -> str:
        """Append a message (an agent's reply takes the conversation over), and `more` messages after it (the rest of
        a reply split to the channel's length); the first one's id ("" for a turn's commit made again). An agent's
        reply with a `client_id` is recorded once: made again, it answers the first one's id. `answer`, when
        given, receives the whole answer (`responded`: the response target the reply met, {kind, ms, breached})."""
        searched = author in ("ai", "agent") and (kind or "message") == "message"
        found = self.run("post", workspace_id, conversation_id, author=author, text=text, turn=_stamp(turn),
                         agent=agent_id, agent_name=agent_name, kind=kind, visibility=visibility, rich=rich, data=data,
                         notice=notice, published=published, client_id=client_id, more=list(more) or None,
                         set=fields or None, terms=search.terms(" ".join([text, *more])) if searched else None)
        if answer is not None:
            answer.update(found)
        return str(found.get("message", ""))

    def rate(self, workspace_id: str, conversation_id: str, rating: int, comment: str = "", via: str = "") -> str:
        """The customer's rating of a closed conversation (a new one replaces it); who it is attributed to, "ai" or
        "human". Refused not_found, not_closed."""
        answer = self.run("rate", workspace_id, conversation_id, rating=rating, comment=comment, via=via)
        return str(answer["by"])

    def note(self, workspace_id: str, conversation_id: str, text: str, agent_id: str, agent_name: str,
             mentions: Sequence[str] = ()) -> str:
        """An agent's private note (never sent, never shown to the customer); each agent mentioned is notified. Its
        message id."""
        answer = self.run("note", workspace_id, conversation_id, text=text, agent=agent_id, agent_name=agent_name,
                          mentions=list(mentions) or None, terms=search.terms(text) or None)
        return str(answer["message"])

    def reopen(self, workspace_id: str, conversation_id: str, actor: Owner) -> None:
        """Open a closed conversation again, owned by `actor`; Refused not_closed or newer_open."""
        self.run("reopen", workspace_id, conversation_id, actor=actor)

    def reply_of(self, workspace_id: str, agent_id: str, client_id: str) -> tuple[str, str] | None:
        """The (conversation, message) an agent's reply with this idempotency key was recorded as, if it was."""
        key = keys.key(keys.REPLY, workspace_id=workspace_id, agent=agent_id, client_id=client_id)
        found: Any = self.redis.get(key)
        if not found:
            return None
        conversation_id, _, mid = str(found).partition("|")
        return conversation_id, mid

    # --- ownership ---------------------------------------------------------------------------------------------

    def assign(self, workspace_id: str, conversation_id: str, target: Owner, actor: Owner, *, reason: str,
               notice: Said = "", force: bool = False, published: bool = True,
               timeout_ms: int | None = None, assignment: dict[str, Any] | None = None) -> dict[str, Any]:
        """Give the conversation to `target`; {"owner", "previous"} or {"unchanged": true}. A chat released to
        nobody goes to another free agent under automatic assignment ("owner" says who has it now)."""
        return self.run("assign", workspace_id, conversation_id, target=target, actor=actor, reason=reason,
                        notice=notice, force=force or None, published=published, timeout_ms=timeout_ms,
                        assignment=assignment)

    def close(self, workspace_id: str, conversation_id: str, actor: Owner, *, turn: TurnStamp | None = None,
              goodbye: Said = "", agent_name: str | None = None, force: bool = False,
              assignment: dict[str, Any] | None = None, notice: Said | None = None) -> int:
        """Close the conversation; how many times it was handed to humans (0: the AI resolved it alone)."""
        answer = self.run("close", workspace_id, conversation_id, actor=actor, turn=_stamp(turn), goodbye=goodbye,
                          agent_name=agent_name, force=force or None, assignment=assignment, notice=notice)
        return int(answer.get("handovers", 0))

    def publish(self, workspace_id: str, published: bool, actor: Owner, reason: str, timeout_ms: int,
                announce: bool = True, limit: int = 200, notice: Said = "",
                assignment: dict[str, Any] | None = None, sla: dict[str, Any] | None = None) -> dict[str, int]:
        """Set the AI agent's publication; unpublishing moves up to `limit` AI conversations to the team, publishing
        gives back up to `limit` of those that wait only because it was unpublished (`notice` to a customer who
        waits). {"moved", "remaining"}."""
        return self.run("publish", workspace_id, published=published, actor=actor, reason=reason, timeout_ms=timeout_ms,
                        announce=announce or None, limit=limit, notice=notice, assignment=assignment, sla=sla)

    # --- presence and automatic assignment -----------------------------------------------------------------------

    def set_presence(self, workspace_id: str, agent_id: str, status: str,
                     assignment: dict[str, Any] | None = None) -> dict[str, Any]:
        """The agent's own choice (online, away, offline); coming online hands them queued chats.
        {"status", "given"}."""
        return self.run("presence", workspace_id, agent=agent_id, status=status, assignment=assignment)

    def stream_open(self, workspace_id: str, agent_id: str, token: str, lease_ms: int,
                    assignment: dict[str, Any] | None = None) -> dict[str, Any]:
        """An inbox stream opened: the agent is back as they chose, unless they chose offline. {"status", "given"}."""
        return self.run("stream_open", workspace_id, agent=agent_id, token=token, lease_ms=lease_ms,
                        assignment=assignment)

    def stream_lease(self, workspace_id: str, agent_id: str, token: str, lease_ms: int) -> None:
        """Renew an open stream's lease, or cut a closed one's to the grace period."""
        self.run("stream_lease", workspace_id, agent=agent_id, token=token, lease_ms=lease_ms)

    def presence_sweep(self, workspace_id: str) -> list[str]:
        """Turn offline the agents whose last inbox stream's lease ended; their ids."""
        gone: list[str] = self.run("presence_sweep", workspace_id)["offline"] or []
        return gone

    def set_assignment(self, workspace_id: str, mode: str | None, capacity: int | None, actor: Owner,
                       assignment: dict[str, Any]) -> dict[str, Any]:
        """Settings' assignment (None: back to the file's); hands out waiting chats when it is automatic.
        {"mode", "capacity", "given"}."""
        return self.run("set_assignment", workspace_id, mode=mode, capacity=capacity, actor=actor,
                        assignment=assignment)

    def presence(self, workspace_id: str) -> dict[str, dict[str, Any]]:
        """Every agent's presence that was ever set: {agent id: {"status", "since", "chosen"}}."""
        flat: Any = self.redis.hgetall(keys.key(keys.PRESENCE, workspace_id=workspace_id))
        found: dict[str, dict[str, Any]] = {}
        for name, value in flat.items():
            agent_id, _, part = name.partition(":")
            entry = found.setdefault(agent_id, {"status": "offline", "since": 0, "chosen": ""})
            if not part:
                entry["status"] = value
            elif part == "since":
                entry["since"] = int(value)
            elif part == "chosen":
                entry["chosen"] = value
        return found

    def assignment_override(self, workspace_id: str) -> dict[str, str]:
        """Settings' assignment as stored: mode, capacity and the file's value it overrode (empty: none)."""
        stored: Any = self.redis.hmget(keys.key(keys.ASSIGNMENT, workspace_id=workspace_id),
                                       ["mode", "capacity", "file"])
        if stored[0] is None:
            return {}
        return {"mode": stored[0], "capacity": stored[1], "file": stored[2]}

    def held(self, workspace_id: str, agent_ids: list[str]) -> dict[str, int]:
        """How many open chats each agent holds."""
        pipe = self.redis.pipeline(transaction=False)
        for agent_id in agent_ids:
            pipe.zcard(keys.key(keys.VIEW, workspace_id=workspace_id, view=f"agent:{agent_id}"))
        return dict(zip(agent_ids, pipe.execute(), strict=True))

    def queued(self, workspace_id: str) -> list[str]:
        """The conversations waiting for a free agent, oldest first."""
        ids: Any = self.redis.zrange(keys.key(keys.ASSIGN_QUEUE, workspace_id=workspace_id), 0, -1)
        return list(ids)

    # --- the no-human fallback ---------------------------------------------------------------------------------

    def fire(self, workspace_id: str, text: Said, form: dict[str, Any] | None,
             limit: int = 200) -> list[dict[str, Any]]:
        """Send the contact form where a no-human wait is due: [{"conversation", "message", "channel", "late_ms"}].
        `text` and `form` may each be given per language ({language: …, "default": language}): each conversation
        gets its own language's (see LANGUAGE in state.lua)."""
        return self.timers(workspace_id, text, form, limit)[0]

    def timers(self, workspace_id: str, text: Said, form: dict[str, Any] | None, limit: int = 200,
               resolved_text: Said | None = None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Every due timer: the contact forms sent (as `fire`), and the AI conversations resolved after their quiet
        time ([{"conversation", "channel"}])."""
        due = self.fire_timers(workspace_id, text, form, limit, resolved_text)
        return due.fired, due.resolved

    def fire_timers(self, workspace_id: str, text: Said, form: dict[str, Any] | None, limit: int = 200,
                    resolved_text: Said | None = None, sla: dict[str, Any] | None = None,
                    assignment: dict[str, Any] | None = None) -> Due:
        """Every due timer, as `timers`, and the response targets missed: [{"conversation", "kind", "owner", "due",
        "channel", "requeued", "now_owner"}] (`sla`'s on_breach says what becomes of them)."""
        answer = self.run("fire", workspace_id, text=text, form=form, limit=limit, resolved_text=resolved_text,
                          sla=sla, assignment=assignment)
        # cjson encodes an empty Lua table as {}
        return Due(answer["fired"] or [], answer.get("resolved") or [], answer.get("breached") or [],
                   answer.get("reminded") or [])

    # --- delivery ----------------------------------------------------------------------------------------------

    def outbox_next(self, workspace_id: str, conversation_id: str, token: str, lock_ms: int = 120_000,
                    resolvable: Sequence[str] = (), check_after_ms: Sequence[int] = ()) -> Outgoing | None:
        """Take the outbox (or keep it, for the holder of `token`): the next message to send, or None when empty.
        Raises Refused("busy") while another sender holds it, and Unavailable when the message's record is not yet
        on the configured replicas (a message sent then lost with its primary would be answered and sent again).
        `resolvable` and `check_after_ms` say what becomes of a message a dead sender left (see outbox_done)."""
        return _outgoing(self.run("outbox_next", workspace_id, conversation_id, durable=True, token=token,
                                  lock_ms=lock_ms, resolvable=list(resolvable) or None,
                                  check_after_ms=list(check_after_ms) or None))

    def outbox_done(self, workspace_id: str, conversation_id: str, token: str, message: str,
                    outcome: Literal["sent", "failed", "unknown", "retry"], *, provider_id: str = "",
                    status: str = "", reason: str = "", error_code: str = "", final: bool = False,
                    confirmed: bool = False, retry_ms: Sequence[int] = (1000,), grace_ms: int = 0,
                    lock_ms: int = 120_000, resolvable: Sequence[str] = (),
                    check_after_ms: Sequence[int] = ()) -> Outgoing | None:
        """Record what became of the message being sent; the next one to send, or None (also after a retry, which
        releases the outbox until retry_ms[n] from the n-th retry, and fails the message after the last).
        `confirmed`: the provider already had it (found by asking, not sent again). An unknown outcome on a channel
        of `resolvable` is queued again check_after_ms[n] after its n-th unknown outcome, to ask the provider."""
        answer = self.run("outbox_done", workspace_id, conversation_id, token=token, message=message, outcome=outcome,
                          provider_id=provider_id or None, status=status or None, reason=reason or None,
                          error_code=error_code or None, final=final or None, confirmed=confirmed or None,
                          retry_ms=list(retry_ms), grace_ms=grace_ms, lock_ms=lock_ms,
                          resolvable=list(resolvable) or None, check_after_ms=list(check_after_ms) or None)
        return _outgoing(answer)

    def resend(self, workspace_id: str, conversation_id: str, message: str, actor: Owner) -> None:
        self.run("resend", workspace_id, conversation_id, message=message, actor=actor)

    def resend_all(self, workspace_id: str, conversation_id: str, actor: Owner,
                   messages: Sequence[str] | None = None) -> tuple[list[str], int]:
        """Queue again every message of the conversation whose delivery failed or is unknown (or those of
        `messages` that are), oldest first: (the ids queued, how many were not resendable)."""
        answer = self.run("resend_all", workspace_id, conversation_id, actor=actor,
                          messages=list(messages) if messages is not None else None)
        return list(answer["queued"] or []), int(answer["skipped"])  # cjson encodes an empty Lua table as {}

    def recheck_due(self, workspace_id: str, limit: int = 100) -> list[str]:
        """Queue again the sends of unknown outcome whose check is due, so their sender asks the provider:
        ["<conversation>|<message>", …]."""
        return list(self.run("recheck_due", workspace_id, limit=limit)["queued"] or [])

    def status(self, workspace_id: str, channel_name: str, provider_id: str, status: str,
               error_code: str = "", reason: str = "", final: bool = False) -> bool:
        """A provider's delivery report (`reason`: why it failed, in words; `final`: sending again cannot help);
        whether it changed the message's status. A failed message stays failed."""
        answer = self.run("status", workspace_id, channel=channel_name, provider_id=provider_id, status=status,
                          error_code=error_code, reason=reason, final=final)
        return bool(answer["applied"])

    def forget(self, workspace_id: str, conversation_id: str) -> bool:
        """Delete a closed conversation (retention); whether there was one."""
        return bool(self.run("forget", workspace_id, conversation_id)["forgotten"])

    # --- reads -------------------------------------------------------------------------------------------------

    def conversation(self, workspace_id: str, conversation_id: str) -> Conversation:
        key = keys.key(keys.CONVERSATION, workspace_id=workspace_id, conversation_id=conversation_id)
        data: Any = self.redis.hgetall(key)
        if not data:
            raise Refused("not_found", conversation_id, {})
        return decode_conversation(data)

    def conversation_ids(self, workspace_id: str, view: str, agent_id: str = "", offset: int = 0,
                         limit: int = 50) -> list[str]:
        zset = keys.key(keys.VIEW, workspace_id=workspace_id, view=view_key(view, agent_id))
        ids: Any = self.redis.zrevrange(zset, offset, offset + limit - 1) if limit else []
        return ids

    def view_page(self, workspace_id: str, view: str, agent_id: str = "", cursor: str = "",
                  limit: int = 50, label: str = "") -> tuple[list[Conversation], str, dict[str, int]]:
        """A page of an inbox view (or of a label's conversations), latest activity first, continuing after `cursor`;
        the next page's cursor ("" at the end) and the size of every view (and the label's). One round trip whatever
        the view's size (page.lua)."""
        zset = keys.key(keys.VIEW, workspace_id=workspace_id, view=view_key(view, agent_id))
        counted = [keys.key(keys.VIEW, workspace_id=workspace_id, view=view_key(v, agent_id)) for v in VIEWS]
        names: tuple[str, ...] = VIEWS
        if label:
            zset = keys.key(keys.LABELED, workspace_id=workspace_id, label=label)
            counted.append(zset)
            names = (*VIEWS, "label")
        prefix = keys.key(keys.CONVERSATION, workspace_id=workspace_id, conversation_id="")
        rows, next_cursor, sizes = self._page(zset, counted, prefix, cursor, limit)
        return [decode_conversation(row[2]) for row in rows if row[2]], next_cursor, dict(zip(names, sizes,
                                                                                              strict=True))

    def _page(self, zset: str, counted: Sequence[str], prefix: str, cursor: str, limit: int,
              extra: str = "") -> tuple[list[list[Any]], str, list[int]]:
        """A page of a zset with each member's hash, after `cursor` ("<score>:<member>" of the last one already
        read): a new or moved member never shifts the pages still to read, as an offset would."""
        after = parse_cursor(cursor) if cursor else None
        argv = (prefix, after[0] if after else "", after[1] if after else "", limit, extra)
        try:
            raw: Any = self.redis.evalsha(PAGE_SHA, 1 + len(counted), zset, *counted, *argv)
        except NoScriptError:
            self.redis.script_load(PAGE_SCRIPT)
            raw = self.redis.evalsha(PAGE_SHA, 1 + len(counted), zset, *counted, *argv)
        answer = json.loads(raw)
        rows: list[list[Any]] = answer["page"] or []  # cjson encodes an empty Lua table as {}
        rows = [[row[0], row[1], row[2] or {}, *([row[3] or []] if extra else [])] for row in rows]
        last = rows[-1] if rows else None
        next_cursor = f"{int(last[1])}:{last[0]}" if answer["more"] and last else ""
        return rows, next_cursor, [int(n) for n in answer["sizes"] or []]

    def conversations(self, workspace_id: str, ids: list[str]) -> list[Conversation]:
        pipe = self.redis.pipeline(transaction=False)
        for conversation_id in ids:
            pipe.hgetall(keys.key(keys.CONVERSATION, workspace_id=workspace_id, conversation_id=conversation_id))
        return [decode_conversation(data) for data in pipe.execute() if data]

    def counts(self, workspace_id: str, agent_id: str = "") -> dict[str, int]:
        pipe = self.redis.pipeline(transaction=False)
        for view in VIEWS:
            pipe.zcard(keys.key(keys.VIEW, workspace_id=workspace_id, view=view_key(view, agent_id)))
        return dict(zip(VIEWS, pipe.execute(), strict=True))

    def messages(self, workspace_id: str, conversation_id: str, after: str = "", limit: int = 500,
                 public_only: bool = False) -> list[Message]:
        """The history from the start (or after a message id), oldest first, with delivery states; read a thousand
        entries at a time (an archive reads a whole long history)."""
        parts = {"workspace_id": workspace_id, "conversation_id": conversation_id}
        start = place(after) + 1 if after else 0
        entries: list[str] = []
        while len(entries) < limit:
            chunk: Any = self.redis.lrange(keys.MESSAGES % parts, start + len(entries),
                                           start + min(len(entries) + 1000, limit) - 1)
            entries += chunk
            if len(chunk) < min(1000, limit):
                break
        delivery: Any = self.redis.hgetall(keys.DELIVERY % parts)
        found = [decode_message(raw, delivery) for raw in entries]
        return [m for m in found if not public_only or m["visibility"] == "public"]

    def page(self, workspace_id: str, conversation_id: str, before: str = "", limit: int = 100,
             public_only: bool = False) -> Page:
        """The `limit` newest messages before message `before` (the newest when ""), oldest first, with delivery
        states. A long history is read from its end, never whole (a page of public messages may sit behind many
        internal ones: the reads are bounded, and `next_before` then pages on from the oldest one read)."""
        history = keys.key(keys.MESSAGES, workspace_id=workspace_id, conversation_id=conversation_id)
        length = int(self.redis.llen(history))  # type: ignore[arg-type]
        start = min(place(before), length) if before else length
        found: list[Message] = []
        oldest = ""
        for _ in range(_PAGE_READS):
            missing = limit - len(found)
            if start <= 0 or missing <= 0:
                break
            lower = max(start - (max(2 * missing, 50) if public_only else missing), 0)
            raw: Any = self.redis.lrange(history, lower, start - 1)
            entries = [decode_message(entry, {}) for entry in raw]
            kept = [m for m in entries if not public_only or m["visibility"] == "public"][-missing:]
            first = kept[0] if len(kept) == missing else entries[0] if entries else None
            start, oldest = (place(first["id"]), first["id"]) if first else (lower, oldest)
            found = kept + found
        self._add_delivery(workspace_id, conversation_id, found)
        return Page(found, start > 0, oldest if start > 0 else "")

    def _add_delivery(self, workspace_id: str, conversation_id: str, messages: list[Message]) -> None:
        outgoing = [m["id"] for m in messages if m["author"] != "customer"]
        if not outgoing:
            return
        fields = [name for mid in outgoing for name in (mid, f"{mid}:error", f"{mid}:final")]
        key = keys.key(keys.DELIVERY, workspace_id=workspace_id, conversation_id=conversation_id)
        states: Any = self.redis.hmget(key, fields)
        delivery = {name: value for name, value in zip(fields, states, strict=True) if value is not None}
        for message in messages:
            if message["id"] in delivery:
                message["delivery"] = delivery[message["id"]]
            if f"{message['id']}:error" in delivery:
                message["delivery_error"] = delivery[f"{message['id']}:error"]
            if f"{message['id']}:final" in delivery:
                message["delivery_final"] = True

    def recent(self, workspace_id: str, conversation_id: str, count: int) -> tuple[Conversation, list[Message]]:
        """The conversation and its latest `count` messages, oldest first."""
        conversation, history, _ = self.turn_view(workspace_id, conversation_id, count)
        return conversation, history

    def turn_view(self, workspace_id: str, conversation_id: str,
                  count: int) -> tuple[Conversation, list[Message], str | None]:
        """What an AI turn reads, in one round trip: the conversation, its latest `count` messages (oldest first) and
        the workspace's knowledge-base version (the turn's index is rebuilt only when that changed)."""
        parts = {"workspace_id": workspace_id, "conversation_id": conversation_id}
        pipe = self.redis.pipeline(transaction=False)
        pipe.hgetall(keys.CONVERSATION % parts)
        pipe.lrange(keys.MESSAGES % parts, -count, -1)
        pipe.get(keys.KB_VERSION % parts)
        data, entries, version = pipe.execute()
        if not data:
            raise Refused("not_found", conversation_id, {})
        return decode_conversation(data), [decode_message(raw, {}) for raw in entries], version

    def message(self, workspace_id: str, conversation_id: str, mid: str) -> Message:
        history = keys.key(keys.MESSAGES, workspace_id=workspace_id, conversation_id=conversation_id)
        raw: Any = self.redis.lindex(history, place(mid))
        message = decode_message(raw, {}) if raw else None
        if message is None or message["id"] != mid:
            raise Refused("not_found", conversation_id, {})
        return message

    def contact(self, workspace_id: str, contact_id: str) -> dict[str, Any]:
        data: Any = self.redis.hgetall(keys.key(keys.CONTACT, workspace_id=workspace_id, contact=contact_id))
        if not data:
            raise NotFound(f"no contact {contact_id!r}")
        contact: dict[str, Any] = dict(data)
        contact["identities"] = json.loads(contact.get("identities", "[]"))
        contact.pop("terms", None)  # search's, not a detail
        conversations = keys.key(keys.CONTACT_CONVERSATIONS, workspace_id=workspace_id, contact=contact_id)
        contact["conversations"] = list(self.redis.zrange(conversations, 0, -1))
        return contact

    def contact_page(self, workspace_id: str, cursor: str = "",
                     limit: int = 100) -> tuple[list[dict[str, Any]], str, int]:
        """A page of Contacts, most recently updated first, after `cursor`; the next page's cursor ("" at the end)
        and how many contacts there are. One round trip: each contact and its conversations come with the page."""
        zset = keys.key(keys.CONTACTS, workspace_id=workspace_id)
        prefix = keys.key(keys.CONTACT, workspace_id=workspace_id, contact="")
        suffix = keys.CONTACT_CONVERSATIONS.removeprefix(keys.CONTACT)
        rows, next_cursor, (count,) = self._page(zset, [zset], prefix, cursor, limit, suffix)
        contacts = []
        for _, _, data, conversations in rows:
            if data:
                contact: dict[str, Any] = dict(data)
                contact["identities"] = json.loads(contact.get("identities", "[]"))
                contact.pop("terms", None)
                contact["conversations"] = list(conversations)
                contacts.append(contact)
        return contacts, next_cursor, count

    def contact_ids(self, workspace_id: str, offset: int = 0, limit: int = 100) -> list[str]:
        zset = keys.key(keys.CONTACTS, workspace_id=workspace_id)
        ids: Any = self.redis.zrevrange(zset, offset, offset + limit - 1) if limit else []
        return ids

    def latest(self, workspace_id: str, channel_name: str, sender: str) -> str:
        """The sender's newest conversation on the channel ("" when they have none)."""
        key = keys.key(keys.LATEST, workspace_id=workspace_id, channel=channel_name, sender=sender)
        return str(self.redis.get(key) or "")

    def fields(self, workspace_id: str, conversation_id: str, *names: str) -> list[str | None]:
        """Some of a conversation's stored fields, as stored (None where unset): one HMGET."""
        key = keys.key(keys.CONVERSATION, workspace_id=workspace_id, conversation_id=conversation_id)
        return [None if value is None else str(value) for value in self.redis.hmget(key, list(names))]

    def view_sizes(self, workspace_id: str, views: Sequence[str]) -> dict[str, int]:
        """How many conversations each view's zset holds ("open", "ai", "waiting", …): one pipelined round trip."""
        pipe = self.redis.pipeline(transaction=False)
        for view in views:
            pipe.zcard(keys.key(keys.VIEW, workspace_id=workspace_id, view=view))
        return dict(zip(views, (int(size) for size in pipe.execute()), strict=True))

    def outbox_head(self, workspace_id: str, conversation_id: str) -> str:
        """The id of the message first in the conversation's outbox ("" when it is empty)."""
        head = self.redis.lindex(keys.key(keys.OUTBOX, workspace_id=workspace_id, conversation_id=conversation_id), 0)
        return str(head or "")

    def sent_as(self, workspace_id: str, channel_name: str, provider_id: str) -> str:
        """The message Baton recorded sending under the provider's id, "<conversation>|<message>" ("" if none)."""
        found = self.redis.get(keys.key(keys.SENT, workspace_id=workspace_id, channel=channel_name,
                                        provider_id=provider_id))
        return str(found or "")

    def closed_before(self, workspace_id: str, before_ms: int, limit: int) -> list[str]:
        """Up to `limit` conversations closed before `before_ms`, oldest first."""
        closed = keys.key(keys.VIEW, workspace_id=workspace_id, view="closed")
        return [str(c) for c in self.redis.zrangebyscore(closed, "-inf", before_ms, start=0, num=limit)]

    def now_ms(self) -> int:
        """The Redis server's clock, which every timestamp of the state script uses."""
        seconds, micros = self.redis.time()
        return int(seconds) * 1000 + int(micros) // 1000

    def published(self, workspace_id: str, default: bool) -> bool:
        """The AI agent's publication: the runtime override when an admin set one, else the configured default."""
        override = self.redis.hget(keys.key(keys.AI_AGENT, workspace_id=workspace_id), "published")
        return default if override is None else override == "1"


class AsyncStore:
    """The operations of the request path on the asyncio client: recording without a thread hop, in one round trip
    (with the replica acknowledgement pipelined behind it when `replicas` > 0)."""

    def __init__(self, client: aioredis.Redis, replicas: int = 0, timeout_ms: int = 500, aof: bool = False) -> None:
        self.redis = client
        self.sha = _sha(SCRIPT)
        self.replicas = replicas
        self.timeout_ms = timeout_ms
        self.aof = aof
        self.waitaof = True
        self.aof_status = AofStatus()
        self.settings: dict[str, dict[str, dict[str, Any]]] = {}  # as Store's

    async def run(self, operation: str, workspace_id: str, durable: bool = False, **arguments: Any) -> dict[str, Any]:
        given = self.settings.get(workspace_id, {}).get(operation)
        if given:
            arguments = {**given, **arguments}
        argv = (operation, workspace_id, _payload(arguments))
        wait = self.replicas if durable else 0
        aof = self.aof and durable
        if aof and not self.waitaof:
            await self._check_aof()
            aof = False
        try:
            return await self._run(argv, wait, aof)
        except _NoWaitAof as exc:
            log.warning("the Redis server has no WAITAOF (%s): durability.aof_acks reads its append-only file's "
                        "write status instead, once a second", exc)
            self.waitaof = False
            await self._check_aof()
            return exc.answer

    async def _check_aof(self) -> None:
        if self.aof_status.due():
            self.aof_status.read_at = time.monotonic()  # one read at a time: the others use the status as it is
            self.aof_status.update(await self.redis.info("persistence"))
        self.aof_status.check()

    async def _run(self, argv: tuple[str, str, str], wait: int, aof: bool) -> dict[str, Any]:
        for attempt in (1, 2):
            if not wait and not aof:  # the common case: one command, no pipeline object to build
                try:
                    return _answer(await self.redis.evalsha(self.sha, 0, *argv), "")  # type: ignore[misc]
                except NoScriptError:
                    await self.redis.script_load(SCRIPT)
                    continue
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.evalsha(self.sha, 0, *argv)
                if aof:
                    pipe.execute_command("WAITAOF", 1, 0, self.timeout_ms)
                if wait:
                    pipe.execute_command("WAIT", wait, self.timeout_ms)
                replies = await pipe.execute(raise_on_error=False)
            if not isinstance(replies[0], NoScriptError) or attempt == 2:
                return _checked(replies, wait, "", aof)
            await self.redis.script_load(SCRIPT)
        raise AssertionError("unreachable")

    async def inbound(self, workspace_id: str, message: CustomerMessage) -> Recorded:
        """Record a customer message: on the primary, and on the configured number of replicas."""
        return Recorded(**await self.run("inbound", workspace_id, durable=True, **_customer_payload(message)))

    async def status(self, workspace_id: str, channel_name: str, provider_id: str, status: str,
                     error_code: str = "", reason: str = "", final: bool = False) -> bool:
        answer = await self.run("status", workspace_id, channel=channel_name, provider_id=provider_id, status=status,
                                error_code=error_code, reason=reason, final=final)
        return bool(answer["applied"])

    # --- reads of the request path (the event streams) ---

    async def latest(self, workspace_id: str, channel_name: str, sender: str) -> str:
        """The sender's newest conversation on the channel ("" when they have none)."""
        key = keys.key(keys.LATEST, workspace_id=workspace_id, channel=channel_name, sender=sender)
        return str(await self.redis.get(key) or "")

    async def belongs_to(self, workspace_id: str, conversation_id: str, channel_name: str, sender: str) -> bool:
        """The conversation is this sender's, on this channel."""
        key = keys.key(keys.CONVERSATION, workspace_id=workspace_id, conversation_id=conversation_id)
        return bool(await self.redis.hmget(key, ["channel", "sender"]) == [channel_name, sender])

    async def newest_message_id(self, workspace_id: str, conversation_id: str) -> str:
        """The id of the conversation's last message ("" when it has none)."""
        newest = await self.redis.lindex(keys.key(keys.MESSAGES, workspace_id=workspace_id,
                                                  conversation_id=conversation_id), -1)
        return str(json.loads(newest)["id"]) if newest else ""

    async def messages_after(self, workspace_id: str, conversation_id: str, after: str) -> list[Message]:
        """The conversation's messages after message `after` ("" for all), from the history (never trimmed)."""
        history = keys.key(keys.MESSAGES, workspace_id=workspace_id, conversation_id=conversation_id)
        return [decode_message(str(raw), {}) for raw in await self.redis.lrange(history, place(after) + 1, -1)]


def _sha(script: str) -> str:
    return hashlib.sha1(script.encode()).hexdigest()  # noqa: S324 - the name Redis gives the script


def _stamp(turn: TurnStamp | None) -> dict[str, str] | None:
    return asdict(turn) if turn else None


def _outgoing(answer: dict[str, Any]) -> Outgoing | None:
    if "message" not in answer:
        return None
    customer_at = str(answer.get("customer_at") or "0")
    return Outgoing(_with_defaults(answer["message"], {}), answer["recipient"], answer["channel"],
                    int(float(customer_at)) if customer_at.replace(".", "", 1).isdigit() else 0,
                    maybe_sent=bool(answer.get("maybe_sent")), auto=bool(answer.get("auto")),
                    attempted_at=int(answer.get("attempted_at") or 0))


def parse_cursor(cursor: str) -> tuple[int, str] | None:
    """A list's cursor ("<score>:<id>"), or None when it is not one."""
    score, _, member = cursor.partition(":")
    if not (score.isascii() and score.isdigit() and len(score) <= 16 and member.isascii() and member.isdigit()
            and len(member) <= 20):
        return None
    return int(score), member


def view_key(view: str, agent_id: str = "") -> str:
    """The zset behind an inbox view ('mine' is the agent's own)."""
    if view == "mine":
        return f"agent:{agent_id}"
    if view == "all":
        return "open"
    if view in ("waiting", "ai", "closed", "overdue", "snoozed"):
        return view
    raise NotFound(f"no view {view!r}; expected one of {', '.join(VIEWS)}")


_INTEGERS = ("epoch", "created_at", "updated_at", "closed_at", "last_message_at", "handover_at", "waiting_since",
             "handovers", "unknown_streak", "form_sent_at", "handed_back_at", "waits", "captured_at",
             "followed_up_at", "noted_at", "assigned_at", "customer_at", "answered_at", "sla_due", "sla_since",
             "sla_target", "sla_breached", "after_hours", "csat", "csat_at", "csat_asked")


def decode_conversation(data: dict[str, Any]) -> Conversation:
    conversation: dict[str, Any] = dict(data)
    for name in _INTEGERS:
        if conversation.get(name, "") != "":
            conversation[name] = int(float(conversation[name]))
    conversation["offer"] = conversation.get("offer") == "1"
    return conversation  # type: ignore[return-value]


def place(message_id: str) -> int:
    """A message's place in its conversation's history, from its id ("<ms>-<place>")."""
    _, _, n = message_id.partition("-")
    return int(n) if n.isdigit() else -1


def message_after(a: str, b: str) -> bool:
    """Message a comes after message b of the same conversation ("" comes before everything)."""
    return place(a) > place(b)


def decode_message(raw: str, delivery: dict[str, str]) -> Message:
    """A history entry (JSON, holding only what differs from the defaults) as the API shows it."""
    return _with_defaults(json.loads(raw), delivery)


def _with_defaults(message: dict[str, Any], delivery: dict[str, str]) -> Message:
    message["created_at"] = int(message["id"].split("-", 1)[0])
    message.setdefault("text", "")
    message.setdefault("visibility", "public")
    message.setdefault("kind", "message")
    if message["id"] in delivery:
        message["delivery"] = delivery[message["id"]]
        if f"{message['id']}:error" in delivery:
            message["delivery_error"] = delivery[f"{message['id']}:error"]
        if f"{message['id']}:final" in delivery:
            message["delivery_final"] = True
    return message  # type: ignore[return-value]
