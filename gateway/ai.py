"""Asking the workspace's model (through litellm) for a reply, a handover decision or a summary."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gateway import metrics
from gateway.config import AIAgentConfig, BatonConfig
from gateway.errors import ModelNotConfigured, NoAnswer
from gateway.handover.store import Message
from gateway.knowledge import HANDOVER_TOOL, KnowledgeEntry, instructions, render_knowledge, strip_unknown
from gateway.llm import completion, import_litellm
from gateway.logs import Throttled
from gateway.text import CUT, PROMPT_TEXT, max_tokens

log = logging.getLogger("baton.ai")

OFFLINE_PREFIX = "baton/"

HANDOVER_TOOL_SPEC = {
    "type": "function",
    "function": {
        "name": HANDOVER_TOOL,
        "description": "Transfer the conversation to a human support agent. Use when the customer asks for "
                       "a person, or when you cannot help and the customer agreed to be transferred.",
        "parameters": {
            "type": "object",
            "properties": {"reason": {"type": "string", "description": "Why a human should take over"}},
            "required": ["reason"],
        },
    },
}


@dataclass(frozen=True)
class Reply:
    text: str
    unknown: bool = False  # the model said the knowledge does not answer the question
    handover: str | None = None  # the reason, when the model called the handover tool


def is_offline(agent: AIAgentConfig) -> bool:
    return agent.model.startswith(OFFLINE_PREFIX)


def missing_keys(agent: AIAgentConfig) -> list[str]:
    """The environment variables a hosted model needs and lacks (none when litellm_params carries a key)."""
    if is_offline(agent) or agent.litellm_params.get("api_key"):
        return []
    try:
        found = import_litellm().validate_environment(model=agent.model)
    except Exception:  # noqa: BLE001 - a model litellm does not know: the call itself will say so
        return []
    return list(found.get("missing_keys") or [])


def check_models(config: BatonConfig) -> list[str]:
    """Say once, at start-up, which AI agents cannot reach their model; the problems, for `baton check`."""
    problems = []
    for workspace in config.workspaces:
        agent = workspace.ai_agent
        if agent is not None and (missing := missing_keys(agent)):
            problems.append(f"workspace {workspace.id}: the AI agent's model {agent.model!r} needs "
                            f"{', '.join(missing)}, which is not set: every conversation will be handed to a human")
    for problem in problems:
        log.error(problem)
    return problems


_failures = Throttled(log, every=60.0)
_summaries = Throttled(log, every=60.0)


def log_failure(agent: AIAgentConfig, conversation_id: str, exc: Exception) -> None:
    """A model call failed: a credentials problem is one line a minute, anything else its traceback."""
    kind = type(exc).__name__
    if isinstance(exc, ModelNotConfigured):  # check_models said so when the worker started
        log.debug("conversation %s: %s", conversation_id, exc)
    elif kind in ("AuthenticationError", "PermissionDeniedError", "NotFoundError", "BadRequestError"):
        _failures.error("the model %s refused the call (%s: %s); conversations are handed to a human",
                        agent.model, kind, str(exc).splitlines()[0][:200])
    else:
        log.exception("conversation %s: the model %s failed", conversation_id, agent.model, exc_info=exc,
                      extra={"conversation": conversation_id})


def describe_failure(agent: AIAgentConfig, exc: Exception) -> str:
    """A failed call in a few words an admin can act on (no traceback, no provider's wall of text)."""
    if isinstance(exc, import_litellm().Timeout):
        return f"no answer within {agent.timeout:g} s"
    if isinstance(exc, NoAnswer):
        return str(exc)
    status = getattr(exc, "status_code", None)
    if "Received response - <APIResponse [200" in str(exc):  # litellm's words for a 200 it could not read
        return "the model answered HTTP 200 with a body that is not a completion (a proxy's page?)"
    detail = str(exc).splitlines()[0] if str(exc) else ""
    detail = detail.rsplit(" - ", 1)[-1][:120]
    return f"{type(exc).__name__}, HTTP {status}: {detail}" if status else f"{type(exc).__name__}: {detail}"


def system_prompt(agent: AIAgentConfig, knowledge: list[KnowledgeEntry], ranked: bool = False) -> str:
    return "\n\n".join([agent.system_prompt.strip(), render_knowledge(knowledge), instructions(ranked)])


def chat_messages(agent: AIAgentConfig, knowledge: list[KnowledgeEntry], history: Sequence[Message],
                  handed_back: bool, ranked: bool = False) -> list[dict[str, str]]:
    """The model's view of the conversation: public customer, AI and human-agent messages."""
    messages = [{"role": "system", "content": system_prompt(agent, knowledge, ranked)}]
    for message in history[-agent.history_limit:]:
        if message["visibility"] != "public" or message["author"] == "system":
            continue
        role = "user" if message["author"] == "customer" else "assistant"
        text = message.get("text", "")
        if len(text) > PROMPT_TEXT:  # an oversized message of an earlier release is not sent again and again
            text = text[:PROMPT_TEXT] + CUT
        if message["author"] == "agent":
            text = f"(human agent {message.get('agent_name') or message.get('agent', '')}) {text}"
        messages.append({"role": role, "content": text or "(attachment)"})
    if handed_back:
        messages.insert(1, {"role": "system", "content": (
            "A human agent handled part of this conversation and handed it back to you. Continue helping; "
            "do not transfer to a human again unless the customer asks anew.")})
    return messages


def complete(agent: AIAgentConfig, messages: list[dict[str, str]], tools: bool = True, *, timeout: float | None = None,
             **extra: Any) -> Any:
    """One call to the model: litellm's and its SDK's own retries off, `timeout` (the agent's by default) on it."""
    params: dict[str, Any] = {**agent.litellm_params, "model": agent.model, "messages": messages,
                              "timeout": agent.timeout if timeout is None else timeout,
                              "num_retries": 0, "max_retries": 0, **extra}
    if agent.temperature is not None:
        params["temperature"] = agent.temperature
    if tools and not is_offline(agent):
        params["tools"] = [HANDOVER_TOOL_SPEC]
    with metrics.MODEL.labels(agent.model).time():
        return completion(**params)


def complete_within_budget(agent: AIAgentConfig, messages: list[dict[str, str]], **extra: Any) -> Any:
    """The model's answer within `timeout` + `retry_budget` seconds: a call that surely got no answer (refused,
    429, 5xx, a body that is not a completion) is tried again after a short pause while the budget leaves room for
    one; a call that timed out is not (the model is not answering), nor one the provider refused outright. A
    `retry_budget` of 0 means one attempt, whatever its outcome."""
    deadline = time.monotonic() + agent.timeout + agent.retry_budget
    pause = RETRY_PAUSE
    while True:
        timeout = min(agent.timeout, deadline - time.monotonic())
        try:
            return complete(agent, messages, timeout=timeout, **extra)
        except Exception as exc:
            if not agent.retry_budget or not retryable(exc) or deadline - time.monotonic() - pause < MIN_ATTEMPT:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 2.0)


RETRY_PAUSE = 0.5  # before the first retry; doubled each time, at most 2 s
MIN_ATTEMPT = 1.0  # a retry needs at least this long left in the budget


def retryable(exc: Exception) -> bool:
    """Did this call surely get no answer, so that another may? (A timeout or a refusal will not change.)"""
    litellm = import_litellm()
    if isinstance(exc, litellm.Timeout):
        return False
    return getattr(exc, "status_code", None) in (429, 500, 502, 503, 504, 529)


def respond(agent: AIAgentConfig, knowledge: list[KnowledgeEntry], history: Sequence[Message],
            handed_back: bool = False, max_text: int = 4096, ranked: bool = False) -> Reply:
    """The model's answer to the conversation so far, within the agent's timeout and retry budget, its length capped
    for a channel that takes `max_text` characters a message. Raises ModelNotConfigured without calling a model
    whose key is missing (litellm would raise a different error for each provider), NoAnswer for a completion with
    nothing in it, else whatever litellm raises."""
    if missing := missing_keys(agent):
        raise ModelNotConfigured(f"the model {agent.model} needs {', '.join(missing)}")
    cap = min(max_tokens(max_text), int(agent.litellm_params.get("max_tokens") or max_tokens(max_text)))
    response = complete_within_budget(agent, chat_messages(agent, knowledge, history, handed_back, ranked),
                                    max_tokens=cap)
    choices = getattr(response, "choices", None) or []
    if not choices:
        raise NoAnswer(f"the model {agent.model} answered with no choices")
    message = choices[0].message
    for call in getattr(message, "tool_calls", None) or []:
        if call.function.name == HANDOVER_TOOL:
            return Reply(text="", handover=_reason(call.function.arguments))
    text, unknown = strip_unknown(message.content or "")
    if not text.strip() and not unknown:
        raise NoAnswer(f"the model {agent.model} answered with an empty message")
    return Reply(text=text, unknown=unknown)


def _reason(arguments: str | None) -> str:
    try:
        reason = json.loads(arguments or "{}").get("reason", "")
    except (ValueError, AttributeError):
        reason = ""
    return f"The AI judged that a human should take over: {reason}" if reason else "The AI asked for a human"


LANGUAGE_NAMES = {"en": "English", "es": "Spanish", "fr": "French", "de": "German", "pt": "Portuguese",
                  "it": "Italian"}


def summarise(agent: AIAgentConfig, history: Sequence[Message], model_ok: bool = True,
              language: str = "en") -> str:
    """A short summary for the human who takes over: written by a hosted model that is answering (`model_ok`), in
    one call of at most `summary_timeout` seconds, in the team's `language`; otherwise, or when that call fails, the
    extractive one."""
    if model_ok and not is_offline(agent) and not missing_keys(agent):
        try:
            transcript = "\n".join(f"{m['author']}: {m.get('text', '')}" for m in _public(history)[-20:])
            response = complete(agent, [
                {"role": "system", "content": "Summarise this support chat for the human agent taking over, "
                                              "in at most two sentences: what the customer wants and what "
                                              "has been tried. Write the summary in "
                                              f"{LANGUAGE_NAMES.get(language, 'English')}."},
                {"role": "user", "content": transcript}], tools=False,
                timeout=min(agent.summary_timeout, agent.timeout))
            summary = str(response.choices[0].message.content or "").strip()
            if summary:
                return summary
        except Exception as exc:  # noqa: BLE001 - a summary is a nicety; fall back to the extractive one
            _summaries.warning("summary by %s failed (%s); using the extractive summary", agent.model,
                               type(exc).__name__)
    return extractive_summary(history)


def extractive_summary(history: Sequence[Message], limit: int = 3) -> str:
    asked = [m.get("text", "") for m in _public(history) if m["author"] == "customer" and m.get("text")]
    if not asked:
        return "The customer has not written anything yet."
    quoted = "; ".join(f"“{_clip(text)}”" for text in asked[-limit:])
    return f"{len(asked)} customer message(s). Latest: {quoted}"


def _public(history: Sequence[Message]) -> list[Message]:
    return [m for m in history if m["visibility"] == "public" and m["author"] != "system"]


def _clip(text: str, width: int = 140) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"
