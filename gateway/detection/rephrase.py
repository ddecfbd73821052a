"""Whether a customer repeats or rephrases an earlier question (token-set similarity, typo tolerant)."""

from __future__ import annotations

from collections.abc import Sequence

from gateway.detection.features import normalise


def _words(spec: str) -> frozenset[str]:
    return frozenset(spec.split())


_STOP_WORDS = _words(
    "a an the i me my mine we our you your it its this that these those is are was were be been am do "
    "does did done have has had can could would should will shall may might must how what why when where "
    "which who whom there here to of for on in at by with from about into up out as and or but if so not "
    "no please hi hello hey thanks thank still again just any some way want need know tell get help "
    "anyone someone im ive id much many whats wheres hows whos thats theres youre cant dont doesnt isnt"
)
_SUFFIXES = (
    ("ies", "y"), ("sses", "ss"), ("xes", "x"), ("ches", "ch"), ("shes", "sh"), ("ing", ""), ("ed", ""),
    ("s", ""),
)  # fmt: skip


def _distance(a: str, b: str) -> int:
    """Optimal-string-alignment edit distance: a swap of neighbouring letters counts as one edit."""
    before: list[int] = []
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, 1):
        current = [i]
        for j, char_b in enumerate(b, 1):
            best = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char_a != char_b))
            if i > 1 and j > 1 and char_a == b[j - 2] and a[i - 2] == char_b:
                best = min(best, before[j - 2] + 1)
            current.append(best)
        before, previous = previous, current
    return previous[-1]


def _close(word: str, target: str) -> bool:
    """Whether word is a plausible misspelling of target (same first letter, one or two edits)."""
    allowed = 2 if len(target) >= 12 else 1
    similar = word[:1] == target[:1] and abs(len(word) - len(target)) <= allowed
    return similar and _distance(word, target) <= allowed


def _stem(word: str) -> str:
    if word.endswith("ss"):
        return word
    for suffix, replacement in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)] + replacement
    return word


def _content_words(text: str) -> set[str]:
    return {_stem(word) for word in normalise(text).split() if word not in _STOP_WORDS}


def _near_any(word: str, others: set[str]) -> bool:
    return len(word) >= 5 and any(_close(word, other) for other in others)


def _similarity(first: set[str], second: set[str]) -> float:
    """Token-set Jaccard similarity in which near-identical spellings count as the same word."""
    if not first or not second:
        return 0.0
    shared = sum(1 for word in first if word in second or _near_any(word, second))
    shared = min(shared, len(second))
    return shared / (len(first) + len(second) - shared)


def is_rephrase(text: str, earlier: Sequence[str], threshold: float = 0.6) -> bool:
    """The customer is repeating or rephrasing one of their earlier questions."""
    words = _content_words(text)
    return any(_similarity(words, _content_words(previous)) >= threshold for previous in earlier)
