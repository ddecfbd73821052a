"""Text as retrieval compares it: normalised, split into words, function words dropped, words stemmed, and the
support vocabulary of the six languages mapped onto shared concepts (gateway.retrieval.lexicon).

The stemmer is deliberately crude and language-blind: it strips one common inflectional ending of any of the six
languages, then keeps at most STEM_LENGTH characters. Question and passage go through the same function, so what
matters is that the forms of one word meet, not that the stem is a real word.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable

from gateway.retrieval.lexicon import CONCEPTS, PHRASES, STOP

STEM_LENGTH = 7
MIN_CONCEPT_STEM = 4
_WORD = re.compile(r"[^\W_]+(?:[-'’][^\W_]+)*")
# Longest first; each needs a stem of at least 3 characters left.
_ENDINGS = sorted(str.split("""
ations ation ements ement ments ment ingen ungen ung ings ing ed ies es s
ciones cion ción ones iones ion aciones acion mente idades idade idad ité ites ita iti
zioni zione ções ção coes cao ais eis ois
ern er en em e a o os as i ee ez ons ar ir are ere ire ieren ado ada ido ida ato ata ito ando endo iendo
"""), key=len, reverse=True)


def normalise(text: str) -> str:
    """Lower case, accents folded (é → e, ß → ss, ü → u), curly quotes straightened."""
    text = text.casefold().replace("’", "'").replace("ß", "ss")
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def tokens(text: str) -> list[str]:
    """The words of a text, normalised; elisions split off ("l'ampoule" → "ampoule")."""
    out: list[str] = []
    for match in _WORD.findall(normalise(text)):
        for part in re.split(r"['’]", match):
            if part:
                out.append(part)
    return out


@functools.lru_cache(maxsize=65536)
def stem(word: str) -> str:
    if word.endswith("s") and len(word) > 4:  # a plural first: "orders" → "order" → "ord", as "order" → "ord"
        word = word[:-1]
    for ending in _ENDINGS:
        if word.endswith(ending) and len(word) - len(ending) >= 3:
            word = word[: -len(ending)]
            break
    return word[:STEM_LENGTH]


def terms(text: str) -> list[str]:
    """What retrieval indexes and asks: the content words of `text`, stemmed, as concepts where the lexicon has one."""
    out: list[str] = []
    text = normalise(text)
    for concept, pattern in _PHRASES:
        text, found = pattern.subn(" ", text)
        out.extend([concept] * found)
    for word in tokens(text):
        if word in _STOP or len(word) < 2 and not word.isdigit():
            continue
        for part in word.split("-") if "-" in word and word not in _CONCEPT else (word,):
            if part in _STOP:
                continue
            stemmed = stem(part)
            out.append(_CONCEPT.get(part) or (len(stemmed) >= MIN_CONCEPT_STEM and _CONCEPT.get(stemmed)) or stemmed)
    return out


def grams(words: Iterable[str], sizes: tuple[int, ...] = (3, 4)) -> list[str]:
    """Character n-grams inside each word (with boundary marks): they meet compounds, typos and unknown inflections."""
    out: list[str] = []
    for word in words:
        marked = f"<{word}>"
        for size in sizes:
            out.extend(marked[i:i + size] for i in range(max(len(marked) - size + 1, 1)))
    return out


_STOP = frozenset(normalise(word) for word in STOP)


def _concepts() -> dict[str, str]:
    table: dict[str, str] = {}
    stems: list[tuple[str, str]] = []
    for line in re.split(r"\n(?! )", CONCEPTS):
        words = [normalise(word) for word in line.split()]
        if not words:
            continue
        canonical = "=" + words[0]
        for word in words:
            table.setdefault(word, canonical)
        stems.extend((stem(word), canonical) for word in words)
    for stemmed, canonical in stems:  # after every word: "lamp" is the lamp, though "lampada" (bulb) stems to it
        if len(stemmed) >= MIN_CONCEPT_STEM:  # "pago" → "pag" would take "page" along
            table.setdefault(stemmed, canonical)
    return table


_CONCEPT = _concepts()

_PHRASES = [(concept, re.compile(r"\b(?:" + "|".join(re.escape(p.strip()) for p in phrases.split("|")) + r")\b"))
            for concept, phrases in PHRASES.items()]
