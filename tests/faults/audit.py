"""The audit every fault scenario ends with: it reconciles what the customers sent (the Ledger), what the gateways
acknowledged, what Redis stored, and what reached the fake Twilio and the widgets' streams.

- lost: an acknowledged customer message that is not stored, or that no AI answer (nor, once the conversation
  went to a human, its handover) follows; or an answer that never left its outbox.
- doubled: an AI answer posted twice in a history (more AI messages than customer messages before them, or two
  answers of the fake model naming the same message), a message Twilio received more often than Baton recorded
  sending it (an `unknown` may have reached it once), or a message a widget's stream showed twice.
- unknown: WhatsApp sends Baton could not confirm, marked `unknown` (never sent again on its own).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from gateway import keys
from gateway.connector import Outbound, degrade_to_text
from tests.faults.lab import WORKSPACE
from tests.faults.traffic import Ledger

SENT_LIKE = {"accepted", "queued", "sent", "delivered", "read"}


@dataclass
class Report:
    sent: int = 0
    acknowledged: int = 0
    stored: int = 0
    answered: int = 0
    lost: int = 0
    doubled: int = 0
    unknown: int = 0
    failed: int = 0
    replies: int = 0  # AI answers (and handovers) posted
    conversations: int = 0
    unknown_reasons: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)

    def check(self) -> None:
        """lost = 0 and doubled = 0, with the evidence when not."""
        assert self.lost == 0 and self.doubled == 0 and self.failed == 0, \
            f"{self.summary()}\n" + "\n".join(self.problems[:40])

    def summary(self) -> str:
        return (f"sent {self.sent}, acknowledged {self.acknowledged}, stored {self.stored}, answered "
                f"{self.answered}, lost {self.lost}, doubled {self.doubled}, unknown {self.unknown}"
                + (f", failed {self.failed}" if self.failed else ""))


def quiescent(client: redis.Redis, workspace: str = WORKSPACE) -> bool:
    """No AI turn pending and no outbox with something to send."""
    pending = client.zcard(keys.key(keys.PENDING_TURNS, workspace_id=workspace))
    outboxes = client.zcard(keys.key(keys.OUTBOXES, workspace_id=workspace))
    return pending == 0 and outboxes == 0


def wait_quiescent(redis_url: str, timeout: float = 60.0, workspace: str = WORKSPACE) -> float:
    """Wait until every turn and delivery is done; the seconds it took."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    started = time.monotonic()
    try:
        while True:
            try:
                if quiescent(client, workspace):
                    return time.monotonic() - started
            except redis.RedisError:
                pass
            if time.monotonic() - started > timeout:
                return time.monotonic() - started
            time.sleep(0.1)
    finally:
        client.close()


def audit(redis_url: str, ledger: Ledger, twilio_log: Path | None = None,
          streams: dict[str, list[str]] | None = None, workspace: str = WORKSPACE, settle: float = 60.0) -> Report:
    """Wait (up to `settle` s) for the work to be done, then reconcile. `streams`: per widget stream, the ids of
    the messages it showed, in order."""
    wait_quiescent(redis_url, settle, workspace)
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        report = Report()
        histories = _histories(client, workspace)
        report.conversations = len(histories)
        covered = _coverage(histories, report)
        _acknowledged(client, workspace, ledger, histories, covered, report)
        if twilio_log is not None:
            _deliveries(histories, twilio_log, report)
        for stream, shown in (streams or {}).items():
            for message, times in Counter(shown).items():
                if times > 1:
                    report.doubled += times - 1
                    report.problems.append(f"stream {stream} showed message {message} {times} times")
        if not quiescent(client, workspace):
            pending = client.zrange(keys.key(keys.PENDING_TURNS, workspace_id=workspace), 0, -1)
            outboxes = client.zrange(keys.key(keys.OUTBOXES, workspace_id=workspace), 0, -1)
            report.problems.append(f"work left after {settle:.0f} s: turns {pending[:10]}, outboxes {outboxes[:10]}")
        return report
    finally:
        client.close()


@dataclass
class History:
    conversation: dict[str, str]
    messages: list[dict[str, Any]]
    delivery: dict[str, str]


def _histories(client: redis.Redis, workspace: str) -> dict[str, History]:
    count = int(client.get(keys.key(keys.CONVERSATION_SEQ, workspace_id=workspace)) or 0)
    histories = {}
    for n in range(1, count + 1):
        cid = str(n)
        conversation: Any = client.hgetall(keys.key(keys.CONVERSATION, workspace_id=workspace, conversation_id=cid))
        if not conversation:
            continue
        raw: Any = client.lrange(keys.key(keys.MESSAGES, workspace_id=workspace, conversation_id=cid), 0, -1)
        delivery: Any = client.hgetall(keys.key(keys.DELIVERY, workspace_id=workspace, conversation_id=cid))
        histories[cid] = History(conversation, [json.loads(m) for m in raw], delivery)
    return histories


def _public(message: dict[str, Any]) -> bool:
    return message.get("visibility", "public") == "public"


def _coverage(histories: dict[str, History], report: Report) -> dict[str, set[str]]:
    """Per conversation, its customer messages that an AI answer, or a handover, follows (or that arrived while
    a human had the conversation). Counts the AI's answers, and those posted twice: a turn commits only for new
    customer messages and moves the AI's cursor past them, so the n-th AI message of a conversation has at least
    n customer messages before it; and the fake model's answers ("Re: <the message>") name what they answer, so
    two alike answer the same message twice."""
    covered: dict[str, set[str]] = {}
    for cid, history in histories.items():
        covered[cid] = set()
        with_human = False
        waiting: list[str] = []  # customer messages not yet followed by an answer
        customers = ai_messages = 0
        echoes: Counter[str] = Counter()
        echoing = False  # the last public message was the fake model's answer ("Re: …") or a part of it
        for message in history.messages:
            author, kind = message["author"], message.get("kind", "message")
            if author == "ai" and _public(message) and echoing and not message.get("text", "").startswith("Re: "):
                continue  # the next part of an answer longer than the channel takes (posted with it, in order)
            if _public(message):
                echoing = author == "ai" and message.get("text", "").startswith("Re: ")
            if author == "customer":
                customers += 1
                (covered[cid].add if with_human else waiting.append)(message["id"])
                continue
            answers = (author == "ai" and _public(message)) or kind == "handover" or (
                author == "system" and kind == "notice" and _public(message))
            if kind == "handover":
                with_human = True
            elif kind == "assignment" and (message.get("data") or {}).get("owner") == "ai":
                with_human = False
            if author == "ai" and _public(message):
                ai_messages += 1
                text = message.get("text", "")
                echoes[text] += text.startswith("Re: ")
                if ai_messages > customers or echoes[text] > 1:
                    report.doubled += 1
                    report.problems.append(f"conversation {cid}: AI message {message['id']} answers again what an "
                                           f"earlier one answered ({ai_messages} AI messages after {customers} "
                                           f"customer messages): {text[:80]!r}")
            if answers:
                covered[cid].update(waiting)
                waiting = []
        report.replies += ai_messages
    return covered


def _acknowledged(client: redis.Redis, workspace: str, ledger: Ledger, histories: dict[str, History],
                  covered: dict[str, set[str]], report: Report) -> None:
    sent = ledger.all()
    report.sent = len(sent)
    for item in sent:
        if not item.acked:
            continue
        report.acknowledged += 1
        seen = client.get(keys.key(keys.DEDUPE, workspace_id=workspace, channel=item.channel,
                                   provider_id=item.provider_id))
        if not seen:
            report.lost += 1
            report.problems.append(f"acknowledged but not stored: {item.channel} {item.provider_id} {item.text!r} "
                                   f"(attempts {item.attempts[-3:]})")
            continue
        seen = str(seen)
        cid, _, mid = seen.partition("|")
        history = histories.get(cid)
        stored = history and next((m for m in history.messages if m["id"] == mid), None)
        if not stored or stored.get("text") != item.text:
            report.lost += 1
            report.problems.append(f"acknowledged, recorded as {seen}, but not in the history: {item.text!r}")
            continue
        report.stored += 1
        if mid in covered[cid]:
            report.answered += 1
        else:
            report.lost += 1
            conversation = history.conversation if history else {}
            report.problems.append(f"never answered: conversation {cid} message {mid} {item.text!r} (owner "
                                   f"{conversation.get('owner')}, ai_cursor {conversation.get('ai_cursor')})")


def sends(twilio_log: Path) -> list[dict[str, Any]]:
    """What the fake Twilio received: messages to send (not the notifications it was posted)."""
    entries = (json.loads(line) for line in twilio_log.read_text().splitlines() if line.strip())
    return [entry for entry in entries if "body" in entry]


def notified(twilio_log: Path) -> list[dict[str, Any]]:
    """The notifications a webhook notifier posted to the fake (id, type, conversation)."""
    entries = (json.loads(line) for line in twilio_log.read_text().splitlines() if line.strip())
    return [entry for entry in entries if "notification" in entry]


def _deliveries(histories: dict[str, History], twilio_log: Path, report: Report) -> None:
    """Each public message of a WhatsApp conversation reached Twilio exactly once when recorded as sent, at most
    once when recorded as unknown, and was recorded as one or the other."""
    received = Counter((s["to"], s["body"]) for s in sends(twilio_log))
    exact: Counter[tuple[str, str]] = Counter()
    maybe: Counter[tuple[str, str]] = Counter()
    for cid, history in histories.items():
        if history.conversation.get("delivers") != "1":
            continue
        to = history.conversation["sender"]
        for message in history.messages:
            if message["author"] == "customer" or not _public(message):
                continue
            body = degrade_to_text(Outbound(channel="", recipient=to, text=message.get("text", ""),
                                            message_id=message["id"], conversation_id=cid,
                                            rich=message.get("rich") or None))
            state = history.delivery.get(message["id"], "")
            if state in SENT_LIKE:
                exact[(to, body)] += 1
            elif state == "unknown":
                maybe[(to, body)] += 1
                report.unknown += 1
                report.unknown_reasons[history.delivery.get(f"{message['id']}:error", "")] += 1
            elif state == "failed":
                report.failed += 1
                report.problems.append(f"conversation {cid}: delivery of {message['id']} failed: "
                                       f"{history.delivery.get(message['id'] + ':error')}")
            else:
                report.lost += 1
                report.problems.append(f"conversation {cid}: {message['id']} never delivered (state {state!r})")
    for key in set(received) | set(exact):
        extra = received[key] - exact[key] - maybe[key]
        if extra > 0:
            report.doubled += extra
            report.problems.append(f"Twilio received {received[key]}× but Baton recorded {exact[key]} sent and "
                                   f"{maybe[key]} unknown: {key[0]} {key[1][:80]!r}")
        missing = exact[key] - received[key]
        if missing > 0:
            report.lost += missing
            report.problems.append(f"recorded as sent but Twilio never received it: {key[0]} {key[1][:80]!r}")


FIGURES: list[dict[str, Any]] = []  # each scenario's row, printed as one table at the end of the run
NOTES: list[str] = []  # other figures, printed after it


def record(name: str, report: Report, recovery: str = "", held: str = "") -> None:
    """Report a scenario's audit: a line now, a row of the table at the end of the run."""
    FIGURES.append({"scenario": name, "sent": report.sent, "acknowledged": report.acknowledged,
                    "stored": report.stored, "answered": report.answered, "lost": report.lost,
                    "doubled": report.doubled, "unknown": report.unknown, "recovery": recovery, "held": held})
    print(f"\n[{name}] {report.summary()}; replies {report.replies} in {report.conversations} conversations"
          f"{'; unknown because ' + str(dict(report.unknown_reasons)) if report.unknown else ''}"
          f"{'; recovery ' + recovery if recovery else ''}{'; ' + held if held else ''}")


def table(rows: Iterable[dict[str, Any]]) -> str:
    """The scenarios' figures as a Markdown table."""
    head = ["scenario", "sent", "acknowledged", "stored", "answered", "lost", "doubled", "unknown", "recovery",
            "held"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        lines.append("| " + " | ".join(str(row.get(name, "")) for name in head) + " |")
    return "\n".join(lines)
