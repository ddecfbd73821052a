"""The AI's turn in a conversation: answer, offer a person, hand over, or close when the customer is done.

A turn reads the conversation and its latest messages, decides (`choose`, a pure function of the situation and
what the customer wrote), and commits its outcome through the store stamped with the AI cursor it read: if a
human took over meanwhile, or another turn already committed, the outcome is dropped, never doubled.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import redis

from gateway import ai, detection, keys, retrieval, texts
from gateway.breaker import Breaker
from gateway.config import AIAgentConfig, WorkspaceConfig
from gateway.deployment import Deployment
from gateway.detection.language import detect as detect_language
from gateway.errors import ModelNotConfigured
from gateway.handover import fallback, lifecycle
from gateway.handover.store import Conversation, Message, Refused, TurnStamp, message_after
from gateway.logs import Throttled
from gateway.redis_server import describe_error, passing
from gateway.text import fit
from gateway.work.dispatch import release_lease

log = logging.getLogger("baton.turn")

# In English; a turn says them in the conversation's language (gateway.texts).
OFFER = texts.TEXTS["offer"]["en"]
OFFER_DECLINED = texts.TEXTS["offer_declined"]["en"]
SORRY = texts.TEXTS["sorry"]["en"]
ATTACHMENT = texts.TEXTS["attachment"]["en"]
TEXT_ONLY = texts.TEXTS["text_only"]["en"]
GOODBYE = texts.TEXTS["goodbye"]["en"]
TEXT_WINDOW = 20  # the newest customer messages of a flood that the AI reads as one turn
COMMIT_RETRIES = (0.5, 1.0, 2.0, 4.0, 8.0)  # s between tries of a commit Redis refused or lost, the answer kept
T = TypeVar("T")
_commit_errors = Throttled(log, every=5.0)


class Action(enum.Enum):
    """What the AI does with the customer's latest messages."""

    HAND_OVER = "hand over: the customer asked for a person"
    ACCEPT_OFFER = "hand over: the customer accepted the offer of a person"
    DECLINE_OFFER = "carry on: the customer declined the offer"
    CLOSE = "close: the customer is done"
    OFFER_PERSON = "offer a person: the customer is frustrated with the AI's answers"
    ATTACHMENT = "say it cannot view attachments, and offer a person"
    ANSWER = "answer from the knowledge (and offer a person when it keeps not helping)"
    READ_CONTACT_DETAILS = "read the contact details the customer sent as text"
    FOLLOW_UP = "tell the customer the team will follow up"
    NOTHING = "nothing: a human owns the conversation"


@dataclass(frozen=True)
class Situation:
    """What a turn knows about the conversation before reading the customer's words."""

    owner: str
    offer_pending: bool = False
    form_state: str = ""
    ai_has_answered: bool = False
    close_when_done: bool = True
    offer_on_frustration: bool = True
    team_in: bool = True  # within business hours: outside them the AI offers no person it cannot deliver
    handover_phrases: Sequence[str] = ()
    closing_phrases: Sequence[str] = ()


def choose(situation: Situation, texts: Sequence[str], has_media: bool = False) -> Action:
    """The AI's decision, in order of precedence: an explicit request for a person first, then the answer to a
    pending offer, then the rest. A chat never closes while an offer is pending or when the message asks
    something."""
    if situation.owner == "none" and situation.form_state == "sent":
        return Action.READ_CONTACT_DETAILS
    if situation.owner == "none" and situation.form_state == "done":
        return Action.FOLLOW_UP
    if situation.owner != "ai":
        return Action.NOTHING
    if any(detection.wants_human(text, situation.handover_phrases) for text in texts):
        return Action.HAND_OVER
    last = texts[-1] if texts else ""
    if situation.offer_pending:
        reply = detection.offer_reply(last)
        if reply == "yes":
            return Action.ACCEPT_OFFER
        if reply == "no":
            return Action.DECLINE_OFFER
    joined = "\n".join(texts).strip()
    if has_media and not joined:
        return Action.ATTACHMENT
    done = situation.close_when_done and situation.ai_has_answered and not situation.offer_pending
    if done and detection.is_done(joined, situation.closing_phrases):
        return Action.CLOSE
    # 'I'm sorry this isn't helping' claims the AI failed: never before it has answered anything. A customer
    # who arrives annoyed is answered first; the offer comes if the answers do not help.
    if situation.offer_on_frustration and situation.team_in and situation.ai_has_answered \
            and detection.is_frustrated(joined):
        return Action.OFFER_PERSON
    return Action.ANSWER


@dataclass
class Turn:
    deployment: Deployment
    workspace: WorkspaceConfig
    conversation: Conversation
    history: list[Message]  # the latest messages, oldest first (a bounded window)
    new: list[Message]  # the customer messages since the AI's cursor, at most TEXT_WINDOW
    stamp: TurnStamp
    knowledge_version: str | None = None  # the knowledge base's, read beside the conversation
    agent: AIAgentConfig = field(init=False)

    def __post_init__(self) -> None:
        self.agent = self.workspace.ai_agent or AIAgentConfig()

    @property
    def conversation_id(self) -> str:
        return self.conversation["id"]

    @property
    def texts(self) -> list[str]:
        return [m.get("text", "") for m in self.new if m.get("text")]

    @property
    def text(self) -> str:
        return "\n".join(self.texts).strip()

    @functools.cached_property
    def language(self) -> str:
        """The customer's language over their recent messages (one short message does not flip it), else the one the
        conversation had (from earlier messages), else the workspace's. The turn's commit stores it (its stamp)."""
        written = [m.get("text", "") for m in self.history if m["author"] == "customer" and m.get("text")]
        return detect_language(written, default=self.conversation.get("language") or self.workspace.language)

    def say(self, key: str) -> str:
        """What Baton says (gateway.texts), in the conversation's language and the workspace's wording."""
        return texts.say(key, self.language, self.workspace.texts)


def take_turn(deployment: Deployment, workspace_id: str, conversation_id: str, worker: str = "local") -> str:
    """Run the AI's turn for one conversation, unless another turn holds it (that one picks up what is new).
    Workers hold a renewed lease instead (gateway.work.dispatch); this plain lock suits a single call."""
    workspace = deployment.workspace(workspace_id)
    lock = keys.key(keys.TURN_LOCK, workspace_id=workspace_id, conversation_id=conversation_id)
    token = f"{worker}/{uuid.uuid4().hex[:12]}"
    if not deployment.redis.set(lock, token, nx=True, px=turn_lock_ms(workspace)):
        return "busy: another turn holds the conversation"
    try:
        return run(deployment, workspace, conversation_id, token)
    finally:
        release_lease(deployment.redis, lock, token)


def turn_lock_ms(workspace: WorkspaceConfig) -> int:
    """How long a turn may hold its conversation before another may take it: the answer within its budget, then a
    summary."""
    agent = workspace.ai_agent or AIAgentConfig()
    return int((agent.timeout + agent.retry_budget + agent.summary_timeout + 30) * 1000)


def run(deployment: Deployment, workspace: WorkspaceConfig, conversation_id: str, token: str) -> str:
    """The turn, for a caller that holds the conversation's turn lock with `token`; what happened, for the log."""
    try:
        return _run(deployment, workspace, conversation_id, token)
    except Refused as refused:  # the conversation moved on while the turn ran: nothing to commit
        return f"dropped ({refused.code})"


def _run(deployment: Deployment, workspace: WorkspaceConfig, conversation_id: str, token: str) -> str:
    agent = workspace.ai_agent or AIAgentConfig()
    conversation, history, version = deployment.store.turn_view(workspace.id, conversation_id,
                                                                max(agent.history_limit, 30))
    cursor = conversation.get("ai_cursor", "")
    new = [m for m in history if m["author"] == "customer" and message_after(m["id"], cursor)][-TEXT_WINDOW:]
    stamp = TurnStamp(expect=cursor, upto=new[-1]["id"] if new else cursor, lock=token)
    if not new or conversation["status"] != "open":
        deployment.store.finish(workspace.id, conversation_id, stamp)
        return "nothing new"
    turn = Turn(deployment, workspace, conversation, history, new, stamp, version)
    turn.stamp = dataclasses.replace(stamp, language=turn.language)  # stored by the commit, whichever it is
    action = choose(situation(turn), turn.texts, has_media=any(m.get("media") for m in new))
    return act(turn, action)


def situation(turn: Turn) -> Situation:
    conversation, agent = turn.conversation, turn.agent
    return Situation(
        owner=conversation["owner"], offer_pending=bool(conversation.get("offer")),
        form_state=conversation.get("form_state", ""), ai_has_answered=_ai_has_answered(turn),
        close_when_done=agent.close_when_done, offer_on_frustration=agent.offer_on_frustration,
        team_in=lifecycle.team_in(turn.workspace),
        handover_phrases=turn.workspace.handover.phrases, closing_phrases=agent.closing_phrases)


def act(turn: Turn, action: Action) -> str:
    """Carry the decision out; what happened, for the log."""
    store, workspace_id = turn.deployment.store, turn.workspace.id
    if action is Action.NOTHING:
        store.finish(workspace_id, turn.conversation_id, turn.stamp)
        return f"nothing (owned by {turn.conversation['owner']})"
    if action in (Action.READ_CONTACT_DETAILS, Action.FOLLOW_UP):
        return fallback.answer_in_text(turn.deployment, turn.workspace, turn.conversation, turn.new, turn.stamp,
                                       turn.language)
    if action is Action.HAND_OVER:
        return hand_over(turn, "The customer asked for a human", route="customer")
    if action is Action.ACCEPT_OFFER:
        return hand_over(turn, "The customer accepted the AI's offer of a human", route="offer")
    if action is Action.DECLINE_OFFER:
        return post(turn, turn.say("offer_declined"), offer=0, unknown_streak=0)
    if action is Action.CLOSE:
        lifecycle.closed(committed(turn, lambda: store.close(workspace_id, turn.conversation_id, "ai", turn=turn.stamp,
                                                            goodbye=turn.say("goodbye"), agent_name=turn.agent.name,
                                                            notice=turn.say("closed"))))
        log.info("conversation %s closed by the AI: the customer is done", turn.conversation_id,
                 extra={"workspace": workspace_id, "conversation": turn.conversation_id})
        return "closed"
    if action is Action.OFFER_PERSON:
        return post(turn, f"{turn.say('sorry')} {turn.say('offer')}", offer=1)
    if action is Action.ATTACHMENT:
        if not lifecycle.team_in(turn.workspace):
            return post(turn, turn.say("attachment"), offer=0)
        return post(turn, f"{turn.say('attachment')} {turn.say('offer')}", offer=1)
    return answer(turn)


def passages(turn: Turn) -> list[retrieval.Hit]:
    """The knowledge for this turn: the passages that answer the customer's new messages (a short follow-up is read
    with the question before it), within the agent's token budget."""
    index = turn.deployment.knowledge_index(turn.workspace.id, turn.knowledge_version)
    new_ids = {m["id"] for m in turn.new}
    earlier = [m.get("text", "") for m in turn.history
               if m["author"] == "customer" and m["id"] not in new_ids and m.get("text")]
    return retrieval.retrieve(index, turn.text, earlier[-1] if earlier else "", turn.agent.knowledge)


def answer(turn: Turn) -> str:
    hits = passages(turn)
    knowledge = retrieval.entries(hits)
    handed_back = bool(turn.conversation.get("handed_back_at"))
    breaker = None if ai.is_offline(turn.agent) else Breaker(turn.deployment.redis, turn.workspace.id, turn.agent)
    if breaker is not None and not breaker.allow():
        state = breaker.state()
        return hand_over(turn, f"The AI could not answer: its model failed {state.failures} times in a row "
                               f"({state.last_error}), so it was not asked", route="error", model_ok=False)
    limit = lifecycle.channel_limit(turn.deployment, turn.conversation)
    try:
        reply = ai.respond(turn.agent, knowledge, turn.history, handed_back=handed_back, max_text=limit, ranked=True)
    except Exception as exc:  # noqa: BLE001 - any provider failure: hand over rather than go silent
        ai.log_failure(turn.agent, turn.conversation_id, exc)
        if breaker is not None and not isinstance(exc, ModelNotConfigured):
            breaker.failed(ai.describe_failure(turn.agent, exc))
        return hand_over(turn, f"The AI could not answer ({type(exc).__name__})", route="error", model_ok=False)
    if breaker is not None:
        breaker.succeeded()
    if reply.handover:
        return hand_over(turn, reply.handover, route="model")
    streak = int(turn.conversation.get("unknown_streak") or 0) + 1 if reply.unknown else 0
    text = reply.text
    if any(m.get("media") for m in turn.new):  # a photo with a caption: the answer is the caption's, and says so
        text = f"{turn.say('text_only')}\n\n{text}".strip()
    used = retrieval.sources(hits, reply.unknown, ai.is_offline(turn.agent))
    data = {"sources": used} if used else None
    if should_offer(turn, streak):
        return post(turn, f"{text}\n\n{turn.say('offer')}".strip(), data=data, offer=1, unknown_streak=streak)
    return post(turn, text, data=data, offer=0, unknown_streak=streak)


def should_offer(turn: Turn, streak: int) -> bool:
    """The AI is not resolving the question: it did not know the answer `offer_after_unknown` times running, or
    the customer asked the same thing `offer_after_repeats` times since the AI last took the chat."""
    if not lifecycle.team_in(turn.workspace):
        return False  # nobody to transfer to: a request for a person is still a handover, with the form at once
    if streak >= turn.agent.offer_after_unknown:
        return True
    new_ids = {m["id"] for m in turn.new}
    earlier = [m.get("text", "") for m in turn.history
               if m["author"] == "customer" and m["id"] not in new_ids and _since_hand_back(turn, m)]
    repeats = sum(1 for text in earlier if detection.is_rephrase(turn.text, [text]))
    return repeats + 1 >= turn.agent.offer_after_repeats


def _since_hand_back(turn: Turn, message: Message) -> bool:
    return int(message["created_at"]) >= int(turn.conversation.get("handed_back_at") or 0)


def _ai_has_answered(turn: Turn) -> bool:
    return any(m["author"] in ("ai", "agent") for m in turn.history)


def committed(turn: Turn, commit: Callable[[], T]) -> T:
    """Make a turn's commit, trying it again while Redis refuses it for a passing reason (out of memory, its disk, a
    failover) or loses its answer: the answer is kept, never asked of the model again, and the turn's stamp makes a
    commit that was made after all answer `repeated` instead of doubling it."""
    for delay in (*COMMIT_RETRIES, None):
        try:
            return commit()
        except redis.RedisError as exc:  # CommitUnknown is one
            if delay is None or not passing(exc):
                raise
            _commit_errors.warning("conversation %s: the AI's answer is not recorded yet (%s); trying again in %.1f s",
                                   turn.conversation_id, describe_error(exc), delay)
            time.sleep(delay)
    raise AssertionError("unreachable")


def post(turn: Turn, text: str, data: dict[str, Any] | None = None, **fields: Any) -> str:
    """Post the AI's reply, split into as many messages as the channel needs (a model may answer past its cap);
    `data` goes with its first message (the sources of an answer)."""
    first, *more = fit(text, lifecycle.channel_limit(turn.deployment, turn.conversation))
    try:
        committed(turn, lambda: turn.deployment.store.post(
            turn.workspace.id, turn.conversation_id, "ai", first, turn=turn.stamp, agent_name=turn.agent.name,
            data=data, published=lifecycle.configured_published(turn.workspace), more=more, **fields))
    except Refused as refused:
        log.info("conversation %s: AI reply dropped (%s)", turn.conversation_id, refused.reason,
                 extra={"workspace": turn.workspace.id, "conversation": turn.conversation_id})
        return f"suppressed ({refused.code})"
    return "answered"


def hand_over(turn: Turn, reason: str, route: str, model_ok: bool = True) -> str:
    """The AI unassigns itself, tells the customer a person is coming, and every agent is notified. The summary is
    never asked of a model that just failed (`model_ok` False)."""
    summary = ai.summarise(turn.agent, turn.history, model_ok=model_ok, language=turn.workspace.language)
    try:
        committed(turn, lambda: lifecycle.hand_over(turn.deployment, turn.workspace, turn.conversation_id, turn.stamp,
                                                    reason, route, summary, notice=turn.say("handover_notice")))
    except Refused as refused:
        return f"no handover ({refused.code})"
    return f"handed over ({route})"
