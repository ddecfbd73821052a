"""Baton's offline default model, `baton/knowledge`: answers from the knowledge in the system prompt.

It is a litellm custom provider, so the worker calls it exactly like a hosted model. It answers with
the text of the passage that answers the customer's last message: the first of the passages Baton
retrieved for it (gateway/retrieval), or, given a whole knowledge block, the best one by the same
ranking. No passage that covers the question: it says it does not know. Deterministic and offline.
litellm is imported only when the provider is registered.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from gateway.plugin import (
    HANDOVER_TOOL,
    RANKED_NOTE,
    UNKNOWN_MARKER,
    KnowledgeEntry,
    hookimpl,
    import_litellm,
    parse_knowledge,
    rank_knowledge,
)

BATON_API_VERSION = "1.1"

UNKNOWN_REPLY = f"I'm sorry, I don't know the answer to that one. {UNKNOWN_MARKER}"
HANDOVER_REASON = "The customer asked to talk to a person."


def _wordset(text: str) -> frozenset[str]:
    return frozenset(text.split())


_STOP_WORDS = _wordset(
    """a about am an and any anything are as at be been can could did do does doing for from get got had
    has have hello hey hi how i if in is it its just know let like me much my need of on or our please
    should so some tell than thank thanks that the their them then there these they this to too us
    want was we were what when where which who why will with would you your yours something thing stuff"""
)
_GREETINGS = _wordset("hi hello hey hiya howdy hallo greetings morning afternoon evening bonjour salut hola buenos "
                      "buenas ola olá oi ciao buongiorno buonasera guten tag moin servus")
_THANKS = _wordset("thanks thank thx cheers merci gracias danke obrigado obrigada grazie")
_FILLER = _wordset("good there ok okay great perfect help assist question questions today im")
_HUMAN_NOUN = re.compile(
    r"\b(human|person|agent|operator|representative|staff|someone|somebody|team member)\b", re.IGNORECASE
)
_HUMAN_VERB = re.compile(r"\b(talk|speak|chat|connect|transfer|contact|reach|want|need|get)\b", re.IGNORECASE)
_SUPPORT_ONLY = re.compile(r"^\W*(support|help ?desk|human|agent)\W*$", re.IGNORECASE)


@dataclass(frozen=True)
class Reply:
    """What the model says: text, or a call of the handover tool."""

    text: str | None
    tool_call: str | None = None
    arguments: dict[str, Any] | None = None


def respond(messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None) -> Reply:
    """The model's whole decision for one chat completion request."""
    system = "\n".join(_text(m.get("content")) for m in messages if m.get("role") == "system")
    entries = parse_knowledge(system)
    asked = [_text(m.get("content")) for m in messages if m.get("role") == "user"]
    last = asked[-1] if asked else ""
    handover = _tool(tools, HANDOVER_TOOL)
    if handover and _wants_human(last):
        return Reply(None, HANDOVER_TOOL, _handover_arguments(handover))
    plain = set(re.findall(r"\w+", last.casefold()))
    if not plain - _GREETINGS - _THANKS - _FILLER - _STOP_WORDS:
        return Reply(_small_talk(plain, entries))
    return Reply(answer(entries, last, asked[-2] if len(asked) > 1 else "", ranked=RANKED_NOTE in system))


def answer(entries: list[KnowledgeEntry], question: str, previous: str = "", ranked: bool = False) -> str:
    """The answer of the passage that answers the question, or UNKNOWN_REPLY. Passages Baton retrieved for the
    question (`ranked`) are already the ones that answer it, best first; any other knowledge block is ranked here
    the same way (gateway.plugin.rank_knowledge)."""
    chosen = entries if ranked else rank_knowledge(entries, question, previous)
    return chosen[0].answer if chosen else UNKNOWN_REPLY


def _wants_human(text: str) -> bool:
    return bool(_SUPPORT_ONLY.match(text) or (_HUMAN_NOUN.search(text) and _HUMAN_VERB.search(text)))


def _small_talk(plain: set[str], entries: list[KnowledgeEntry]) -> str:
    if plain & _GREETINGS:
        return _greeting(entries)
    if plain & _THANKS:
        return "You're welcome! Is there anything else I can help you with?"
    return "Is there anything else I can help you with?"


def _greeting(entries: list[KnowledgeEntry]) -> str:
    if not entries:
        return "Hello! How can I help you today?"
    *first, last = [f"“{entry.question}”" for entry in entries[:3]]
    topics = f"{', '.join(first)} or {last}" if first else last
    return f"Hello! I can help with questions like {topics}. What would you like to know?"


def _text(content: Any) -> str:
    if isinstance(content, list):  # OpenAI content parts
        return " ".join(part.get("text", "") for part in content if isinstance(part, dict))
    return content if isinstance(content, str) else ""


def _tool(tools: list[dict[str, Any]] | None, name: str) -> dict[str, Any] | None:
    return next((tool for tool in tools or [] if tool.get("function", {}).get("name") == name), None)


def _handover_arguments(tool: dict[str, Any]) -> dict[str, Any]:
    """The reason, in every string parameter the tool requires (and in `reason` if it has one)."""
    schema = tool["function"].get("parameters") or {}
    properties = schema.get("properties", {})
    wanted = set(schema.get("required", [])) | ({"reason"} & set(properties))
    return {name: HANDOVER_REASON for name in wanted if properties.get(name, {}).get("type") == "string"}


def _fill(response: Any, model: str, messages: list[dict[str, Any]], reply: Reply) -> Any:
    """Write `reply` into litellm's ModelResponse the way an OpenAI-compatible provider would."""
    litellm = import_litellm()
    tool_calls = None
    if reply.tool_call:
        call_id = "call_" + hashlib.sha256(json.dumps(messages, default=str).encode()).hexdigest()[:24]
        function = {"name": reply.tool_call, "arguments": json.dumps(reply.arguments or {})}
        tool_calls = [{"id": call_id, "type": "function", "function": function}]
    message = litellm.Message(role="assistant", content=reply.text, tool_calls=tool_calls)
    finish = "tool_calls" if tool_calls else "stop"
    response.choices = [litellm.Choices(index=0, message=message, finish_reason=finish)]
    response.model = model
    prompt = sum(len(_text(m.get("content"))) for m in messages) // 4 + 1
    completion = len(reply.text or "") // 4 + 1
    response.usage = litellm.Usage(
        prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion
    )
    return response


@functools.cache
def _model_class() -> type:
    litellm = import_litellm()

    class KnowledgeModel(litellm.CustomLLM):  # type: ignore[name-defined,misc]
        """litellm custom provider serving `baton/<anything>` from the prompt's knowledge."""

        provider = "baton"
        #: Runs in this process: the gateway may call `completion` directly rather than through litellm.
        in_process = True

        def completion(self, model: str, messages: list, *args: Any, **kwargs: Any) -> Any:
            tools = (kwargs.get("optional_params") or {}).get("tools")
            return _fill(kwargs["model_response"], model, messages, respond(messages, tools))

        async def acompletion(self, model: str, messages: list, *args: Any, **kwargs: Any) -> Any:
            return self.completion(model, messages, *args, **kwargs)

    return KnowledgeModel


def __getattr__(name: str) -> Any:
    # `KnowledgeModel` subclasses litellm.CustomLLM; building it on first use keeps litellm's
    # multi-second import out of processes that load plugins but never call a model.
    if name == "KnowledgeModel":
        return _model_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@hookimpl
def register_llm_providers(register: Any) -> None:
    register(_model_class()())
