"""Baton's offline default model, `baton/knowledge`: answers from the knowledge in the system prompt.

It is a litellm custom provider, so the worker calls it exactly like a hosted model. It retrieves
the knowledge entries that best match the customer's last message (BM25 to rank, the share of the
question's information the entry covers as confidence) and answers with the entry's own text.
Deterministic and offline. litellm is imported only when the provider is registered.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

from gateway.plugin import HANDOVER_TOOL, UNKNOWN_MARKER, KnowledgeEntry, hookimpl, import_litellm, parse_knowledge

BATON_API_VERSION = "1.0"

CONFIDENCE = 0.5  # share of the question's idf weight an entry must cover to be used
SECOND_ENTRY = 0.85  # a runner-up within this share of the best score is answered too
SHORT_FOLLOW_UP = 3  # content words at most: "and on weekends?" borrows the previous question
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
# Common support paraphrases, by stem: each word on the right counts as the word on the left.
_SYNONYMS = {
    alias: canonical
    for canonical, aliases in {
        "cost": "pric fee charg expensiv cheap",
        "ship": "deliver delivery postag dispatch",
        "return": "refund exchang",
        "weekend": "saturday sunday",
        "cancel": "cancellation",
        "contact": "phon email call",
    }.items()
    for alias in aliases.split()
}
_GREETINGS = _wordset("hi hello hey hiya howdy hallo greetings morning afternoon evening")
_THANKS = _wordset("thanks thank thx cheers")
_FILLER = _wordset("good there ok okay great perfect help assist question questions today im")
_HUMAN_NOUN = re.compile(
    r"\b(human|person|agent|operator|representative|staff|someone|somebody|team member)\b", re.IGNORECASE
)
_HUMAN_VERB = re.compile(r"\b(talk|speak|chat|connect|transfer|contact|reach|want|need|get)\b", re.IGNORECASE)
_SUPPORT_ONLY = re.compile(r"^\W*(support|help ?desk|human|agent)\W*$", re.IGNORECASE)
_K1, _B, _QUESTION_BOOST = 1.2, 0.75, 2


@dataclass(frozen=True)
class Reply:
    """What the model says: text, or a call of the handover tool."""

    text: str | None
    tool_call: str | None = None
    arguments: dict[str, Any] | None = None


def words(text: str) -> list[str]:
    """Lower-case, stemmed content words: what retrieval compares."""
    tokens = re.findall(r"\w+", text.casefold().replace("'", "").replace("\u2019", ""))
    stems = (stem(token) for token in tokens if token not in _STOP_WORDS)
    return [_SYNONYMS.get(word, word) for word in stems]


def stem(word: str) -> str:
    """A light suffix stripper: opening/opened/opens → open, prices/pricing → pric, boxes → box."""
    for suffix, replacement, minimum in (("ies", "y", 5), ("ing", "", 6), ("ed", "", 5)):
        if word.endswith(suffix) and len(word) >= minimum and not word.endswith("eed"):
            word = word[: -len(suffix)] + replacement
            return _undouble(word).removesuffix("e") if replacement == "" else word
    if re.search(r"(s|x|z|ch|sh)es$", word) and len(word) > 4:
        return word[:-2]
    if word.endswith("s") and not word.endswith("ss") and len(word) > 3:
        word = word[:-1]
    return word.removesuffix("e") if len(word) > 3 else word


def _undouble(word: str) -> str:
    if len(word) > 3 and word[-1] == word[-2] and word[-1] not in "aeiouylsz":
        return word[:-1]
    return word


class KnowledgeIndex:
    """BM25 over question (boosted) and answer words of each entry."""

    def __init__(self, entries: list[KnowledgeEntry]) -> None:
        self.entries = entries
        self.documents = [
            Counter(words(entry.question) * _QUESTION_BOOST + words(entry.answer)) for entry in entries
        ]
        lengths = [sum(document.values()) for document in self.documents]
        self.average_length = sum(lengths) / len(lengths) if lengths else 1.0
        self.frequency = Counter(word for document in self.documents for word in document)

    def idf(self, word: str) -> float:
        # An unknown word weighs like the rarest known one: enough to lower confidence, not to veto.
        count, frequency = len(self.documents), max(self.frequency[word], 1)
        return math.log(1 + (count - frequency + 0.5) / (frequency + 0.5))

    def rank(self, query: dict[str, float]) -> list[tuple[float, KnowledgeEntry, Counter[str]]]:
        """(bm25, entry, its words) for entries sharing a word with the query, best first."""
        hits = [
            (self._bm25(query, document), entry, document)
            for document, entry in zip(self.documents, self.entries, strict=True)
            if any(word in document for word in query)
        ]
        return sorted(hits, key=lambda hit: -hit[0])

    def coverage(self, question: list[str], document: Counter[str]) -> float:
        """The idf-weighted share of the question's words that the entry contains."""
        total = sum(self.idf(word) for word in question)
        return sum(self.idf(word) for word in question if word in document) / total if total else 0.0

    def _bm25(self, query: dict[str, float], document: Counter[str]) -> float:
        norm = _K1 * (1 - _B + _B * sum(document.values()) / self.average_length)
        return sum(
            weight * self.idf(word) * document[word] * (_K1 + 1) / (document[word] + norm)
            for word, weight in query.items()
        )


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
    return Reply(answer(entries, last, asked[-2] if len(asked) > 1 else ""))


def answer(entries: list[KnowledgeEntry], question: str, previous: str = "") -> str:
    """The best entry's answer (and a close runner-up's), or UNKNOWN_REPLY below CONFIDENCE.

    A very short question borrows the previous one's words at half weight to rank entries, but
    confidence is judged on the question's own words alone.
    """
    index, asked = KnowledgeIndex(entries), words(question)
    query = dict.fromkeys(asked, 1.0)
    if len(query) <= SHORT_FOLLOW_UP:
        query = {**dict.fromkeys(words(previous), 0.5), **query}
    hits = [
        (score, entry) for score, entry, doc in index.rank(query) if index.coverage(asked, doc) >= CONFIDENCE
    ]
    if not hits:
        return UNKNOWN_REPLY
    (best, entry), *others = hits
    chosen = [entry] + [other for score, other in others[:1] if score >= SECOND_ENTRY * best]
    return "\n\n".join(entry.answer for entry in chosen)


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
