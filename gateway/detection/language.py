"""Which of Baton's six languages the customer writes in: character trigram profiles of the detection corpus.

A conversation's language is decided over the customer's last few messages read together, so one short message
("ok", "thanks") does not flip it; with too little evidence the workspace's default stands. The profiles
(language.json) are fitted by `python benchmarks/language_train.py`.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from pathlib import Path

LANGUAGE_FILE = Path(__file__).resolve().parent / "language.json"
#: Messages read together, newest last: enough to outweigh one short message in another language.
RECENT = 5
#: How much likelier (log-probability per trigram) the best language must be than the next to be chosen.
MARGIN = 0.1  # chosen on the train split: 84.6 % identified, 1.8 % wrong (one message each)
#: Fewer trigrams than this say too little (a lone "ok").
MIN_TRIGRAMS = 6


def trigrams(text: str) -> list[str]:
    """Character trigrams of each word, padded with spaces ('sí' → ' sí', 'sí '), lowercase, digits dropped."""
    grams: list[str] = []
    for word in "".join(char if char.isalpha() or char == "'" else " " for char in text.casefold()).split():
        padded = f" {word} "
        grams.extend(padded[i:i + 3] for i in range(len(padded) - 2))
    return grams


@functools.cache
def _profiles() -> dict[str, tuple[float, dict[str, float]]]:
    document = json.loads(LANGUAGE_FILE.read_text(encoding="utf-8"))
    return {language: (profile["unseen"], profile["trigrams"]) for language, profile in document.items()}


def scores(text: str) -> dict[str, float]:
    """Mean log-probability per trigram of the text under each language's profile."""
    return _scores(trigrams(text))


def _scores(grams: list[str]) -> dict[str, float]:
    found = {}
    for language, (unseen, profile) in _profiles().items():
        found[language] = sum(profile.get(gram, unseen) for gram in grams) / max(len(grams), 1)
    return found


def detect(texts: Sequence[str], default: str = "en") -> str:
    """The language of the customer's recent messages (oldest first), or `default` when they do not say clearly."""
    grams = trigrams(" ".join(texts[-RECENT:]))
    if len(grams) < MIN_TRIGRAMS:
        return default
    ranked = sorted(_scores(grams).items(), key=lambda item: item[1], reverse=True)
    (best, points), (_, runner_up) = ranked[0], ranked[1]
    if best == default or points - runner_up >= MARGIN:
        return best
    return default
