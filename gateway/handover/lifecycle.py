"""Who owns a conversation, and what happens on each change: the rules the AI and the humans both go through,
with what the customer is told at each step.

Each change is one operation of the state script (store.py); the events that put it in every agent's inbox, the
notification that tells agents elsewhere, the no-human wait and the delivery of the customer-facing notice are
part of that same atomic step.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from typing import Any

from gateway import metrics, templates, texts, window
from gateway.config import WorkspaceConfig
from gateway.deployment import Deployment
from gateway.errors import Conflict, Forbidden
from gateway.handover.store import Conversation, Owner, Said, TurnStamp
from gateway.hours import after_open_time, is_open
from gateway.team import Agent, agent_by_id, list_agents
from gateway.text import fit

log = logging.getLogger("baton.handover")

HANDOVER_NOTICE = texts.TEXTS["handover_notice"]["en"]  # a turn says it in the conversation's language
UNPUBLISH_BATCH = 200  # conversations moved per step while unpublishing


def ai_name(workspace: WorkspaceConfig) -> str:
    return workspace.ai_agent.name if workspace.ai_agent else "the AI agent"


FORM_AT_ONCE_MS = 1  # outside business hours: the contact form goes out at the timers' next tick


def no_human_timeout_ms(workspace: WorkspaceConfig) -> int:
    """How long a chat waits for a human before the contact form: handover.no_human_timeout, or at once outside
    business hours (business_hours.form_at_once)."""
    hours = workspace.business_hours
    if hours is not None and hours.form_at_once and not team_in(workspace):
        return FORM_AT_ONCE_MS
    return int(workspace.handover.no_human_timeout * 1000)


def team_in(workspace: WorkspaceConfig, moment: datetime | None = None) -> bool:
    """Within the workspace's business hours (always, when it sets none)."""
    return is_open(workspace.business_hours, moment or datetime.now(UTC))


def sla(workspace: WorkspaceConfig, moment: datetime | None = None) -> dict[str, Any] | None:
    """The workspace's response targets as the state script takes them: {first_ms, next_ms, on_breach}, each target
    the time from now to its deadline counting business hours only (so a chat handed over at closing time is due
    when the team is back); None when the workspace sets none."""
    targets = workspace.sla
    if targets is None:
        return None
    start = moment or datetime.now(UTC)
    found: dict[str, Any] = {"on_breach": targets.on_breach}
    for name, seconds in (("first_ms", targets.first_response), ("next_ms", targets.next_response)):
        due = after_open_time(workspace.business_hours, start, seconds) if seconds else None
        if due is not None:
            found[name] = max(1, int((due - start).total_seconds() * 1000))
    return found


def assignment(workspace: WorkspaceConfig) -> dict[str, Any]:
    """The configured assignment as the state script takes it; an admin's choice in Settings wins while `file` (the
    file's value it overrode) is still what the file says."""
    rule, handover = workspace.assignment, workspace.handover
    found: dict[str, Any] = {"mode": rule.mode, "capacity": rule.capacity, "file": rule.fingerprint(),
                             "joined": texts.every("joined", workspace.language, workspace.texts)}  # {name}: the agent
    if handover.remind_every:  # reminders ride along: every step that may leave a chat waiting arms them
        found.update(remind_ms=int(handover.remind_every * 1000), remind_limit=handover.reminders)
    if workspace.business_hours is not None and not team_in(workspace):
        found["after_hours"] = True  # a chat left waiting now is listed first when the team is back
    return found


def every(workspace: WorkspaceConfig, key: str, **values: str) -> Said:
    """What the customer is told (gateway.texts), in every language: the state script picks the conversation's."""
    return texts.every(key, workspace.language, workspace.texts, **values)


def assignment_in_force(deployment: Deployment, workspace: WorkspaceConfig) -> dict[str, Any]:
    """{"mode", "capacity", "source": "settings" | "config.yaml"}: what automatic assignment does now."""
    stored = deployment.store.assignment_override(workspace.id)
    if stored and stored["file"] == workspace.assignment.fingerprint():
        return {"mode": stored["mode"], "capacity": int(stored["capacity"]), "source": "settings"}
    return {"mode": workspace.assignment.mode, "capacity": workspace.assignment.capacity, "source": "config.yaml"}


def set_assignment(deployment: Deployment, agent: Agent, mode: str | None, capacity: int | None) -> dict[str, Any]:
    """An admin sets the workspace's assignment (None: back to config.yaml's); switching to an automatic mode hands
    out the chats already waiting, oldest first."""
    workspace = deployment.workspace(agent.workspace_id)
    answer = deployment.store.set_assignment(workspace.id, mode, capacity, agent.owner, assignment(workspace))
    log.info("workspace %s: assignment %s, capacity %s, set by %s; %d waiting chat(s) handed out", workspace.id,
             answer["mode"], answer["capacity"], agent.id, answer["given"], extra={"workspace": workspace.id})
    return answer


def team_of(workspace: WorkspaceConfig, channel_name: str) -> str:
    """The team a channel's handovers go to: the channel's own, else the workspace's ("" for every agent)."""
    channel = next((c for c in workspace.channels if c.name == channel_name), None)
    return (channel.team if channel else "") or workspace.team


def configured_published(workspace: WorkspaceConfig) -> bool:
    """The AI agent's publication as configured; the state script prefers an admin's runtime choice."""
    return bool(workspace.ai_agent and workspace.ai_agent.published)


# --- the AI hands over ------------------------------------------------------------------------------------------

def hand_over(deployment: Deployment, workspace: WorkspaceConfig, conversation_id: str, turn: TurnStamp, reason: str,
              route: str, summary: str, notice: Said = HANDOVER_NOTICE) -> int:
    """The AI unassigns itself: the customer hears a person is coming, every agent is notified, and the no-human
    wait starts. Refused (stale_turn, not_owner) when the conversation moved on meanwhile."""
    count = deployment.store.hand_over(
        workspace.id, conversation_id, turn, reason=reason, route=route, summary=summary, notice=notice,
        agent_name=ai_name(workspace), timeout_ms=no_human_timeout_ms(workspace), assignment=assignment(workspace),
        sla=sla(workspace))
    metrics.HANDOVERS.labels(route).inc()
    log.info("conversation %s handed over to the team (%s): %s", conversation_id, route, reason,
             extra=_context(workspace.id, conversation_id))
    return count


def _context(workspace_id: str, conversation_id: str) -> dict[str, str]:
    return {"workspace": workspace_id, "conversation": conversation_id}


# --- humans -----------------------------------------------------------------------------------------------------

def assign(deployment: Deployment, agent: Agent, conversation_id: str, assignee: str, force: bool = False) -> None:
    """Assign to the calling agent ("me"), to another agent (their id), or back to the AI ("ai")."""
    if assignee == "ai":
        hand_back(deployment, agent, conversation_id, force)
        return
    target = agent if assignee == "me" else agent_by_id(deployment.redis, agent.workspace_id, assignee)
    team = deployment.store.conversation(agent.workspace_id, conversation_id).get("team", "")
    if not target.may_take(team):
        who = "you are" if target is agent else f"{target.name} is"
        raise Forbidden(f"this chat is for the {team} team, and {who} not in it (an admin may take any chat)")
    workspace = deployment.workspace(agent.workspace_id)
    _assign(deployment, agent, conversation_id, target.owner, reason=f"assigned by {agent.name}",
            notice=every(workspace, "joined", name=target.name), force=force)


def hand_back(deployment: Deployment, agent: Agent, conversation_id: str, force: bool = False) -> None:
    """The AI takes the conversation again and answers what the customer says next."""
    workspace = deployment.workspace(agent.workspace_id)
    _assign(deployment, agent, conversation_id, "ai", reason="handed back to the AI",
            notice=back_with_the_ai(workspace), force=force)


def unassign(deployment: Deployment, agent: Agent, conversation_id: str) -> None:
    """Stop the AI (or release the conversation): it waits for a human, and the no-human wait starts."""
    workspace = deployment.workspace(agent.workspace_id)
    _assign(deployment, agent, conversation_id, "none", reason=f"unassigned by {agent.name}",
            timeout_ms=no_human_timeout_ms(workspace))


def _assign(deployment: Deployment, agent: Agent, conversation_id: str, target: Owner, *, reason: str,
            notice: Said = "", force: bool = False, timeout_ms: int | None = None) -> None:
    workspace = deployment.workspace(agent.workspace_id)
    waited = _waiting(deployment, workspace.id, conversation_id) if target.startswith("agent:") else None
    moved = deployment.store.assign(workspace.id, conversation_id, target, agent.owner, reason=reason, notice=notice,
                                    force=force, published=configured_published(workspace), timeout_ms=timeout_ms,
                                    assignment=assignment(workspace))
    _taken(waited)
    if not moved.get("unchanged"):
        log.info("conversation %s: %s → %s (%s)", conversation_id, moved.get("previous", "?"), target, reason,
                 extra=_context(workspace.id, conversation_id))


def _waiting(deployment: Deployment, workspace_id: str, conversation_id: str) -> float | None:
    """Seconds since the handover, if the conversation waits for a human (for the time-to-assignment metric)."""
    owner, handover_at = deployment.store.fields(workspace_id, conversation_id, "owner", "handover_at")
    if owner != "none" or not handover_at:
        return None
    return max(0.0, (deployment.store.now_ms() - int(handover_at)) / 1000)


def _taken(waited: float | None) -> None:
    if waited is not None:
        metrics.ASSIGNED_AFTER.observe(waited)


def reply(deployment: Deployment, agent: Agent, conversation_id: str, text: str, client_id: str | None = None,
          template_key: str = "", params: Any = None) -> str:
    """An agent's reply, delivered through the conversation's channel; it takes over from the AI or the wait. With a
    `client_id` (an idempotency key), the same reply sent again is recorded once. With `template_key`, the channel's
    template of that key (and its `params`) is sent instead of free text, which a channel with a reply window
    (WhatsApp) refuses once the window is closed: Conflict, before anything is recorded or sent."""
    waited = _waiting(deployment, agent.workspace_id, conversation_id)
    conversation = deployment.store.conversation(agent.workspace_id, conversation_id)
    channel = deployment.channels.get(conversation["channel"])
    connector = channel.connector if channel else None
    rich: dict[str, Any] | None = None
    if template_key:
        found = templates.template(deployment, conversation["channel"], template_key)
        if found is None:
            raise Conflict(f"channel {conversation['channel']!r} has no template {template_key!r}")
        given = window.check_params(found, params if params is not None else [])
        first, more, rich = window.render(found, given), [], {"type": "template", "key": found.key,
                                                               "params": list(given)}
    else:
        if conversation.get("status") == "open" and \
                not window.is_open(connector, window.customer_at(conversation)):
            raise Conflict(f"not sent: {window.CLOSED}", window="closed")
        first, *more = fit(text, channel_limit(deployment, conversation))
    workspace = deployment.workspace(agent.workspace_id)
    answer: dict[str, Any] = {}
    message = deployment.store.post(agent.workspace_id, conversation_id, "agent", first, agent_id=agent.id,
                                    agent_name=agent.name, notice=every(workspace, "joined", name=agent.name),
                                    client_id=client_id, more=more, rich=rich, answer=answer)
    _taken(waited)
    _responded(deployment, agent.workspace_id, answer.get("responded"))
    if waited is not None:
        log.info("conversation %s: none → %s (took it by replying)", conversation_id, agent.owner,
                 extra=_context(agent.workspace_id, conversation_id))
    return message


def _responded(deployment: Deployment, workspace_id: str, met: Any) -> None:
    """A reply met a response target: how long the customer waited for it, by target and assignment mode."""
    if isinstance(met, dict):
        mode = assignment_in_force(deployment, deployment.workspace(workspace_id))["mode"]
        metrics.HUMAN_REPLY_AFTER.labels(met["kind"], mode).observe(met["ms"] / 1000)


_MENTION = re.compile(r"(?<![\w.@])@([a-z0-9][a-z0-9._-]{0,39})", re.IGNORECASE)


def note(deployment: Deployment, agent: Agent, conversation_id: str, text: str) -> tuple[str, list[str]]:
    """A private note on the conversation, for the team only; each agent of the workspace it @mentions (by id) is
    notified. (The note's id, the agents mentioned.)"""
    known = {record["id"] for record in list_agents(deployment.redis, agent.workspace_id)}
    said = (found.rstrip(".-_").lower() for found in _MENTION.findall(text))
    mentions = list(dict.fromkeys(agent_id for agent_id in said if agent_id in known and agent_id != agent.id))
    message = deployment.store.note(agent.workspace_id, conversation_id, text, agent.id, agent.name, mentions)
    log.info("conversation %s: a note by %s%s", conversation_id, agent.owner,
             f" mentioning {', '.join(mentions)}" if mentions else "", extra=_context(agent.workspace_id,
                                                                                   conversation_id))
    return message, mentions


def reopen(deployment: Deployment, agent: Agent, conversation_id: str) -> None:
    """Open a closed conversation again, as the agent's own: they can write to the customer, whose next message
    comes here."""
    deployment.store.reopen(agent.workspace_id, conversation_id, agent.owner)
    log.info("conversation %s reopened by %s", conversation_id, agent.owner,
             extra=_context(agent.workspace_id, conversation_id))


def channel_limit(deployment: Deployment, conversation: Conversation) -> int:
    """The longest text the conversation's channel takes in one message (4,096 for a channel no longer configured)."""
    channel = deployment.channels.get(conversation["channel"])
    return channel.connector.max_text if channel else 4096


def close(deployment: Deployment, agent: Agent, conversation_id: str, force: bool = False) -> None:
    """Close the conversation; the customer's next message starts a fresh one with the AI."""
    workspace = deployment.workspace(agent.workspace_id)
    closed(deployment.store.close(agent.workspace_id, conversation_id, agent.owner, force=force,
                                  assignment=assignment(workspace), notice=every(workspace, "closed")))
    log.info("conversation %s closed by %s", conversation_id, agent.owner,
             extra=_context(agent.workspace_id, conversation_id))


def closed(handovers: int) -> None:
    metrics.RESOLVED.labels("ai" if handovers == 0 else "handed_over").inc()


def resend(deployment: Deployment, agent: Agent, conversation_id: str, message: str) -> None:
    """Send once more a message whose delivery failed or is unknown: an unknown one only if the provider, asked
    first, does not have it; where the provider cannot be asked, the agent accepts it may arrive twice."""
    deployment.store.resend(agent.workspace_id, conversation_id, message, agent.owner)


def resend_all(deployment: Deployment, agent: Agent, conversation_id: str,
               messages: list[str] | None) -> tuple[list[str], int]:
    """Send once more every message of the conversation that failed or is unknown (or those of `messages`), as
    `resend` does each: (the ids queued, oldest first; how many of `messages` were not resendable). Conflict when
    nothing was queued."""
    queued, skipped = deployment.store.resend_all(agent.workspace_id, conversation_id, agent.owner, messages)
    if not queued:
        raise Conflict("nothing to send again: no message of this conversation failed or is of unknown delivery")
    log.info("conversation %s: %s sent %d message(s) again", conversation_id, agent.owner, len(queued),
             extra=_context(agent.workspace_id, conversation_id))
    return queued, skipped


# --- the AI agent itself ----------------------------------------------------------------------------------------

def set_published(deployment: Deployment, agent: Agent, published: bool) -> None:
    """Publish the AI agent, or unpublish it: it stops at once, its conversations wait for a human, and the
    no-human wait starts for each customer who is waiting for an answer (for the others when they write again).
    Publishing it again gives it back the conversations that wait only because it was unpublished (no human took
    them): a customer left with an unanswered question is told the AI is back and gets the answer."""
    workspace = deployment.workspace(agent.workspace_id)
    if workspace.ai_agent is None:
        raise Conflict("this workspace has no AI agent configured")
    reason = f"AI agent {'published' if published else 'unpublished'} by {agent.name}"
    announce = True
    total = 0
    while True:
        moved = deployment.store.publish(workspace.id, published, agent.owner, reason=reason,
                                         timeout_ms=no_human_timeout_ms(workspace), announce=announce,
                                         limit=UNPUBLISH_BATCH, notice=back_with_the_ai(workspace),
                                         assignment=assignment(workspace), sla=sla(workspace))
        announce = False
        if not published:
            metrics.HANDOVERS.labels("unpublished").inc(moved["moved"])
        total += moved["moved"]
        if moved["remaining"] == 0:  # each step moves, or drops from its list, at least one conversation
            what = "given back to the AI" if published else "now wait for a human"
            log.info("workspace %s: %s; %d conversation(s) %s", workspace.id, reason, total, what,
                     extra={"workspace": workspace.id})
            return


def back_with_the_ai(workspace: WorkspaceConfig) -> Said:
    """"You're chatting with Lumi again.", in every language (the state script picks the conversation's)."""
    return every(workspace, "back_with_ai", name=ai_name(workspace))
