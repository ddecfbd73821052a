"""The decisions the product makes about a customer message: learned models guarded by a few fixed rules."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from gateway.detection import rules
from gateway.detection.features import tokens
from gateway.detection.model import load

OfferReply = Literal["yes", "no", "other"]

#: A reply this long that asks something is a new question, not an answer ('yes?' still answers).
_MAX_QUESTIONING_ANSWER_WORDS = 2


def _probability(task: str, label: str, text: str) -> float:
    models = load()
    return models.probabilities(task, text)[label] if models.knows_a_word(text) else 0.0


def _likely(task: str, label: str, text: str) -> bool:
    return _probability(task, label, text) >= load().thresholds.get(task, 0.5)


def wants_human(text: str, phrases: Sequence[str] = ()) -> bool:
    """The customer asks to talk to a person (phrases: the workspace's own words for that)."""
    if rules.asks_explicitly(text) or rules.mentions(text, phrases):
        return True
    # Unlike the others, this model also reads unknown words: their letters catch 'humna', 'opertor'.
    return not rules.refuses_person(text) and load().probabilities("human", text)["asks"] >= load().thresholds.get(
        "human", 0.5
    )


def offer_reply(text: str) -> OfferReply:
    """How the customer answered 'Would you like me to transfer you to a human agent?'."""
    if not load().knows_a_word(text):
        return "other"  # 'charger', '48213', 'Bob': a word the models never saw is no answer
    if rules.asks_question(text) and len(tokens(text)) > _MAX_QUESTIONING_ANSWER_WORDS + 1:
        return "other"  # 'yes but first, how much is shipping?': a new question to answer first
    scores = load().probabilities("offer", text)
    best: OfferReply = max(("yes", "no", "other"), key=lambda label: scores[label])
    if best != "no" and rules.asks_explicitly(text):
        return "yes"  # 'a human please', 'talk to an agent'
    return best


def is_frustrated(text: str) -> bool:
    """The customer is annoyed: 'that's not what I asked', 'useless', 'you're not listening'."""
    return _likely("frustration", "frustrated", text)


def is_done(text: str, phrases: Sequence[str] = ()) -> bool:
    """The customer needs nothing more ('thanks, that solved it'); phrases: the workspace's own closings."""
    if rules.asks_question(text) or rules.says_more(text) or rules.declines(text) or rules.only_acknowledges(text):
        return False
    if wants_human(text) or is_frustrated(text):
        return False  # 'perfect, is there a warranty?' carries on, whatever else it says
    return rules.mentions(text, phrases) or _likely("closing", "done", text)
