"""The AI's turn in a conversation: answer, offer a transfer, hand over, or close when the customer is done.

A turn reads the customer messages the AI has not seen, decides, and commits its reply through
state.lua with the ownership epoch it read: if a human took over meanwhile the reply is suppressed.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any

from gateway import ai, detection, keys
from gateway.config import AIAgentConfig, WorkspaceConfig
from gateway.deployment import Deployment
from gateway.jobs import enqueue_delivery, enqueue_notifications

log = logging.getLogger("baton.turn")

HANDOVER_NOTICE = "I'm connecting you with a member of our team. They'll be with you shortly."
OFFER = "Would you like me to transfer you to a human agent?"
OFFER_DECLINED = "No problem, let's keep going. What else can I help you with?"
SORRY = "I'm sorry this isn't helping."
GOODBYE = "You're welcome! I'm closing this chat now. Just write again any time you need help."


@dataclass
class Turn:
    deployment: Deployment
    workspace: WorkspaceConfig
    agent: AIAgentConfig
    conversation: dict[str, Any]
    history: list[dict[str, Any]]
    new: list[dict[str, Any]]  # customer messages since the AI's cursor

    @property
    def cid(self) -> str:
        return str(self.conversation["id"])

    @property
    def epoch(self) -> int:
        return int(self.conversation.get("epoch", 0))

    @property
    def text(self) -> str:
        return "\n".join(m.get("text", "") for m in self.new).strip()


def take_turn(deployment: Deployment, workspace_id: str, cid: str) -> str:
    """Run the AI's turn for one conversation, one turn at a time per conversation."""
    lock = keys.key(keys.TURN_LOCK, ws=workspace_id, cid=cid)
    token = uuid.uuid4().hex
    _acquire(deployment, lock, token)
    try:
        return _turn(deployment, workspace_id, cid)
    finally:
        # Release only our own lock (it may have expired and been taken by another turn).
        deployment.redis.eval("if redis.call('GET', KEYS[1]) == ARGV[1] then "
                              "return redis.call('DEL', KEYS[1]) end return 0", 1, lock, token)


def _acquire(deployment: Deployment, lock: str, token: str, ttl_ms: int = 180_000) -> None:
    while not deployment.redis.set(lock, token, nx=True, px=ttl_ms):
        time.sleep(0.02)


def _turn(deployment: Deployment, workspace_id: str, cid: str) -> str:
    from gateway import contact_form

    state = deployment.state
    workspace = deployment.workspace(workspace_id)
    conversation = state.conversation(workspace_id, cid)
    history = state.messages(workspace_id, cid, limit=10_000)
    cursor = conversation.get("ai_cursor", "")
    new = [m for m in history if m["author"] == "customer" and (not cursor or _after(m["id"], cursor))]
    deployment.redis.zrem(keys.key(keys.PENDING_TURNS, ws=workspace_id), cid)
    if not new or conversation["status"] != "open":
        return "nothing new"
    deployment.redis.hset(keys.key(keys.CONVERSATION, ws=workspace_id, cid=cid), "ai_cursor", new[-1]["id"])
    if conversation.get("form_state") == "sent":
        contact_form.read_reply(deployment, workspace, conversation, new)
    if conversation["owner"] != "ai" or workspace.ai_agent is None:
        return f"owned by {conversation['owner']}"
    turn = Turn(deployment, workspace, workspace.ai_agent, conversation, history, new)
    return decide(turn)


def _after(mid: str, cursor: str) -> bool:
    def parts(stream_id: str) -> tuple[int, int]:
        ms, _, seq = stream_id.partition("-")
        return int(ms), int(seq or 0)

    return parts(mid) > parts(cursor)


def decide(turn: Turn) -> str:
    """The AI's decision for this turn, in order of precedence."""
    texts = [m.get("text", "") for m in turn.new]
    if any(detection.wants_human(text) for text in texts):
        return hand_over(turn, "The customer asked for a human", route="customer")
    if turn.conversation.get("offer"):
        decision = detection.offer_reply(texts[-1])
        if decision == "yes":
            return hand_over(turn, "The customer accepted the AI's offer of a human", route="offer")
        if decision == "no":
            return post(turn, OFFER_DECLINED, offer=0, unknown_streak=0)
    if turn.agent.close_when_done and detection.is_done(turn.text) and _ai_has_answered(turn):
        return close(turn)
    if turn.agent.offer_on_frustration and detection.is_frustrated(turn.text):
        return post(turn, f"{SORRY} {OFFER}", offer=1)
    return answer(turn)


def answer(turn: Turn) -> str:
    knowledge = turn.deployment.knowledge(turn.workspace.id)
    handed_back = bool(turn.conversation.get("handed_back_at"))
    try:
        reply = ai.respond(turn.agent, knowledge, turn.history, handed_back=handed_back)
    except Exception as exc:  # noqa: BLE001 - any provider failure: hand over rather than go silent
        log.exception("conversation %s: the model %s failed", turn.cid, turn.agent.model)
        return hand_over(turn, f"The AI could not answer ({type(exc).__name__})", route="error")
    if reply.handover:
        return hand_over(turn, reply.handover, route="model")
    streak = int(turn.conversation.get("unknown_streak") or 0) + 1 if reply.unknown else 0
    if _should_offer(turn, streak):
        return post(turn, f"{reply.text}\n\n{OFFER}".strip(), offer=1, unknown_streak=streak)
    return post(turn, reply.text, offer=0, unknown_streak=streak)


def _should_offer(turn: Turn, streak: int) -> bool:
    if streak >= turn.agent.offer_after_unknown:
        return True
    earlier = [m.get("text", "") for m in turn.history
               if m["author"] == "customer" and m not in turn.new and _since_hand_back(turn, m)]
    repeats = sum(1 for text in earlier if detection.is_rephrase(turn.text, [text]))
    return repeats + 1 >= turn.agent.offer_after_repeats and streak > 0


def _since_hand_back(turn: Turn, message: dict[str, Any]) -> bool:
    return int(message["created_at"]) >= int(turn.conversation.get("handed_back_at") or 0)


def _ai_has_answered(turn: Turn) -> bool:
    return any(m["author"] in ("ai", "agent") for m in turn.history)


def post(turn: Turn, text: str, **fields: Any) -> str:
    change = turn.deployment.state.run(
        "post", turn.workspace.id, conversation=turn.cid, author="ai", epoch=turn.epoch, text=text,
        agent_name=turn.agent.name, set={k: int(v) for k, v in fields.items()},
        ai_published=turn.agent.published)
    if not change.ok:
        log.info("conversation %s: AI reply suppressed (%s, owner %s)", turn.cid, change.get("error"),
                 change.get("owner"))
        return f"suppressed: {change.get('error')}"
    enqueue_delivery(turn.deployment, turn.workspace.id, turn.cid, change["message"])
    return "answered"


def hand_over(turn: Turn, reason: str, route: str) -> str:
    """The AI unassigns itself, tells the customer a person is coming, and every agent is notified."""
    summary = ai.summarise(turn.agent, turn.history)
    return hand_over_conversation(turn.deployment, turn.workspace, turn.conversation, reason, route,
                                  summary=summary, epoch=turn.epoch)


def hand_over_conversation(deployment: Deployment, workspace: WorkspaceConfig, conversation: dict[str, Any],
                           reason: str, route: str, summary: str, epoch: int | None = None,
                           notice: str = HANDOVER_NOTICE) -> str:
    cid = str(conversation["id"])
    change = deployment.state.run(
        "handover", workspace.id, conversation=cid, epoch=epoch, reason=reason, route=route,
        summary=summary, notice=notice, timeout_ms=int(workspace.handover.no_human_timeout * 1000))
    if not change.ok:
        return f"no handover: {change.get('error')} (owner {change.get('owner')})"
    if change.get("notice"):
        enqueue_delivery(deployment, workspace.id, cid, change["notice"])
    enqueue_notifications(deployment, workspace.id, {
        "type": "handover", "workspace": workspace.id, "conversation": cid, "reason": reason,
        "route": route, "summary": summary, "channel": conversation["channel"],
        "customer": conversation.get("profile_name") or conversation.get("sender", ""),
    })
    return f"handed over ({route})"


def close(turn: Turn) -> str:
    change = turn.deployment.state.run("close", turn.workspace.id, conversation=turn.cid, actor="ai",
                                       epoch=turn.epoch, goodbye=GOODBYE)
    if not change.ok:
        return f"not closed: {change.get('error')}"
    if change.get("goodbye"):
        enqueue_delivery(turn.deployment, turn.workspace.id, turn.cid, change["goodbye"])
    return "closed"
