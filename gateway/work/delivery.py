"""Sending what Baton says to customers on channels that send (WhatsApp, …): each conversation's outbox, in order,
one sender at a time, at most once.

A message is marked `sending` before the provider is called. If the sender dies before it records the outcome,
the next sender finds it `sending` and marks it `unknown` instead of sending it again: a provider's send API may
have no idempotency key, so Baton never risks a double on its own. A send that timed out is `unknown` too.

An unknown outcome is resolved by asking the provider, where its connector can (`lookup_send`: Twilio lists the
messages it has for the recipient): CHECK_AFTER_MS after it, the message is queued again, and its sender asks first
and sends it only if the provider surely does not have it. The same question is asked before an agent's "Send
again" of an unknown message. A provider that cannot be asked (Meta's Cloud API) leaves the decision to an agent,
who is told so.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from gateway import keys, metrics, templates, window
from gateway.connector import Connector, Outbound, Template
from gateway.deployment import Deployment
from gateway.errors import SendFailed, Unavailable
from gateway.handover.store import Message, Outgoing, Refused
from gateway.work.dispatch import GRACE_MS, LEASE_MS, Leases

log = logging.getLogger("baton.delivery")

RETRY_MS = (1_000, 3_000, 10_000, 30_000, 60_000)  # after each failure that surely sent nothing; then failed
#: When to ask the provider about a send of unknown outcome, after its first, second and third unknown outcome (the
#: first question waits out a provider that is slow to record what it took); after the third an agent decides.
CHECK_AFTER_MS = (300_000, 900_000, 3_600_000)


def resolvable(deployment: Deployment) -> list[str]:
    """The channels whose provider can be asked what became of a send (their connector has lookup_send)."""
    return [name for name, channel in deployment.channels.items()
            if "lookup_send" in channel.connector.capabilities()]


def drain(deployment: Deployment, workspace_id: str, conversation_id: str, worker: str = "local",
          leases: Leases | None = None) -> int:
    """Send everything queued in the conversation's outbox; how many messages were sent. Another sender holding
    the outbox sends what is queued itself. With `leases`, the outbox is held by a short lease they renew, so the
    outbox of a sender that died is taken over (its message in flight marked unknown) in seconds."""
    token = f"{worker}/{uuid.uuid4().hex[:12]}"
    store = deployment.store
    lock = keys.key(keys.OUTBOX_LOCK, workspace_id=workspace_id, conversation_id=conversation_id)
    lock_ms = LEASE_MS if leases is not None else 120_000
    askable = resolvable(deployment)
    try:
        outgoing = store.outbox_next(workspace_id, conversation_id, token, lock_ms=lock_ms, resolvable=askable,
                                     check_after_ms=CHECK_AFTER_MS)
    except Refused as refused:
        if refused.code in ("busy", "not_found"):
            return 0
        raise
    except Unavailable as exc:  # the first message is not yet on a replica: keep it for later
        _retry_first(deployment, workspace_id, conversation_id, token, exc.reason, lock_ms)
        return 0
    if leases is not None:
        leases.hold(lock, token)
    sent = 0
    try:
        while outgoing is not None:
            outcome = send(deployment, workspace_id, conversation_id, outgoing)
            sent += outcome["outcome"] == "sent"
            if outcome["outcome"] in ("failed", "unknown"):
                metrics.DELIVERY_FAILURES.labels(outgoing.channel_name, outcome["outcome"]).inc()
            try:
                outgoing = store.outbox_done(workspace_id, conversation_id, token, outgoing.message["id"],
                                             retry_ms=RETRY_MS, grace_ms=GRACE_MS, lock_ms=lock_ms,
                                             resolvable=askable, check_after_ms=CHECK_AFTER_MS, **outcome)
            except Unavailable as exc:  # recorded; the next message is not yet on a replica
                _retry_first(deployment, workspace_id, conversation_id, token, exc.reason, lock_ms)
                return sent
    finally:
        if leases is not None:
            leases.release(lock, token)
    return sent


def _retry_first(deployment: Deployment, workspace_id: str, conversation_id: str, token: str, reason: str,
                 lock_ms: int) -> None:
    """Put back the message just taken (marked sending, not sent) and release the outbox."""
    head = deployment.store.outbox_head(workspace_id, conversation_id)
    if head:
        deployment.store.outbox_done(workspace_id, conversation_id, token, head, "retry", reason=reason,
                                     retry_ms=RETRY_MS, grace_ms=GRACE_MS, lock_ms=lock_ms)


def send(deployment: Deployment, workspace_id: str, conversation_id: str, outgoing: Outgoing) -> dict[str, Any]:
    """Call the channel's connector once; the outcome to record (sent, failed, unknown or retry)."""
    message = outgoing.message
    channel = deployment.channels.get(outgoing.channel_name)
    if channel is None or channel.disabled:
        reason = channel.disabled if channel else "the channel is no longer configured"
        return {"outcome": "retry", "reason": f"channel {outgoing.channel_name} unavailable: {reason}"}
    rich = message.get("rich") or None
    found = None
    if rich and rich.get("type") == "template":
        found = templates.template(deployment, outgoing.channel_name, str(rich.get("key", "")))
    outbound = Outbound(channel=outgoing.channel_name, recipient=outgoing.recipient, text=message.get("text", ""),
                        message_id=message["id"], conversation_id=conversation_id, rich=None if found else rich,
                        template=found, params=tuple(str(p) for p in (rich or {}).get("params", [])) if found else ())
    if outgoing.maybe_sent:  # the provider may have it already, whatever the window says now
        asked = ask(deployment, workspace_id, channel.connector, outgoing, outbound)
        if asked is not None:
            return asked
    if rich and rich.get("type") == "template":
        if found is None:
            return {"outcome": "failed", "error_code": "template", "final": True,
                    "reason": f"not sent: the channel has no template {rich.get('key')!r} any more"}
    elif not window.is_open(channel.connector, outgoing.customer_at):
        # Free text outside WhatsApp's window fails at the provider anyway (and may count against the number); the
        # no-human follow-up goes as the workspace's template instead, where the channel has it.
        instead = _in_place(deployment, channel, conversation_id, message)
        if isinstance(instead, str):
            return {"outcome": "failed", "error_code": "window_closed", "final": True, "reason": instead}
        found, params = instead
        rich = {"params": list(params)}
        outbound = Outbound(channel=outgoing.channel_name, recipient=outgoing.recipient, text=message.get("text", ""),
                            message_id=message["id"], conversation_id=conversation_id, template=found,
                            params=tuple(str(p) for p in params))
    try:
        result = channel.connector.send(outbound)
    except SendFailed as exc:
        log.warning("conversation %s: sending %s failed: %s", conversation_id, message["id"], exc.reason,
                    extra={"conversation": conversation_id, "channel": outgoing.channel_name})
        if exc.maybe_sent:
            return {"outcome": "unknown", "reason": exc.reason}
        return {"outcome": "retry" if exc.retryable else "failed", "reason": exc.reason,
                "error_code": str(exc.details.get("code", "")), "final": exc.final}
    except Exception as exc:  # noqa: BLE001 - a connector bug: it may or may not have sent
        log.exception("conversation %s: the %s connector failed sending %s", conversation_id, channel.connector.type,
                      message["id"], extra={"conversation": conversation_id, "channel": outgoing.channel_name})
        return {"outcome": "unknown", "reason": f"the connector failed: {type(exc).__name__}"}
    done: dict[str, Any] = {"outcome": "sent", "provider_id": result.provider_id, "status": result.status}
    if found is not None and (message.get("rich") or {}).get("type") != "template":
        done["reason"] = f"sent as the template {found.key!r}: the customer's 24-hour window had closed"
    return done


#: What Baton says by itself that may go as a template once the window has closed: the no-human contact form.
SWITCHES = ("contact_form",)
_FILLS = {"name": "name", "customer": "name", "customer_name": "name", "business": "business",
          "company": "business", "workspace": "business"}


def _in_place(deployment: Deployment, channel: Any, conversation_id: str,
              message: Message) -> tuple[Template, tuple[str, ...]] | str:
    """The template (and its parameters) to send instead of `message` outside the window, or why there is none."""
    closed = f"not sent: {window.CLOSED}"
    if message.get("author") != "system" or message.get("kind") not in SWITCHES:
        return closed
    workspace = channel.workspace
    key = workspace.handover.window_template
    found = templates.template(deployment, channel.name, key) if key else None
    if found is None:
        where = f"no template {key!r} on channel {channel.name}" if key else "handover.window_template is empty"
        return f"{closed} ({where}, so Baton's follow-up could not go as a template)"
    names = list(found.params) or [f"{{{{{n}}}}}" for n in range(1, (window.expected_params(found) or 0) + 1)]
    values: list[str] = []
    for name in names:
        fill = _FILLS.get(name.strip().lower())
        value = ""
        if fill == "business":
            value = workspace.name or workspace.id
        elif fill == "name":
            conversation = deployment.store.conversation(workspace.id, conversation_id)
            value = str(conversation.get("profile_name") or "")
        if not value:
            return (f"{closed} (the template {key!r} needs {name!r}, which Baton cannot fill by itself: name its "
                    "parameters name or business)")
        values.append(value)
    return found, tuple(values)


def ask(deployment: Deployment, workspace_id: str, connector: Connector, outgoing: Outgoing,
        outbound: Outbound) -> dict[str, Any] | None:
    """Before sending again a message an earlier send of which had no known outcome: ask the provider whether it
    has it. The outcome to record when it has it, or when the question cannot be answered; None to send it."""
    conversation_id = outbound.conversation_id
    if "lookup_send" not in connector.capabilities():
        if outgoing.auto:  # queued by Baton to ask, and the channel no longer can: an agent decides
            return {"outcome": "unknown", "reason": "the channel cannot be asked whether it has this message"}
        return None  # an agent's decision to send it again, knowing it may arrive twice
    # No send of it is older than its first attempt (data from before that mark: than the message itself).
    attempted_at = (outgoing.attempted_at or int(outgoing.message["id"].split("-", 1)[0])) / 1000
    try:
        found = connector.lookup_send(outbound, attempted_at)
    except SendFailed as exc:
        return {"outcome": "unknown", "reason": f"Baton could not ask the channel whether it has it ({exc.reason})"}
    except Exception as exc:  # noqa: BLE001 - a connector bug: it is not known whether the provider has it
        log.exception("conversation %s: the %s connector failed looking up %s", conversation_id, connector.type,
                      outbound.message_id, extra={"conversation": conversation_id, "channel": outbound.channel})
        return {"outcome": "unknown", "reason": f"Baton could not ask the channel whether it has it "
                                                f"(the connector failed: {type(exc).__name__})"}
    if found is None:
        if outgoing.auto:
            return {"outcome": "unknown", "reason": "the channel could not tell whether it has this message"}
        return None
    if found.found and found.provider_id:
        # The provider matched it by what it says, and Baton recorded that id for another message (the same words
        # sent just before or after): the two cannot be told apart, so it is not sent again on Baton's own.
        recorded = deployment.store.sent_as(workspace_id, outbound.channel, found.provider_id)
        if recorded and recorded != f"{conversation_id}|{outbound.message_id}":
            if outgoing.auto:
                return {"outcome": "unknown", "reason": "the channel has a message with the same words that Baton "
                                                        "sent as another one, and cannot tell them apart"}
            return None  # the agent's decision
    if not found.found:
        log.info("conversation %s: the channel does not have %s; sending it again", conversation_id,
                 outbound.message_id, extra={"conversation": conversation_id, "channel": outbound.channel})
        return None
    if found.status == "failed":
        return {"outcome": "failed", "reason": f"the channel had this message ({found.provider_id}) and reports it "
                                               "failed"}
    return {"outcome": "sent", "provider_id": found.provider_id, "status": found.status, "confirmed": True}
