"""Text normalisation and the sparse features the detection models read (pure Python, shared by training)."""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from functools import lru_cache

_APOSTROPHES = re.compile(r"['\u2018\u2019`\u00b4]")
# Skin tones, variation selectors and zero-width joiners change nothing a customer means by an emoji.
_EMOJI_MODIFIERS = re.compile(r"[\U0001F3FB-\U0001F3FF\uFE0E\uFE0F\u200D]")
_EMOJI = r"\U0001F000-\U0001FAFF\u2600-\u27BF"
_NOT_A_TOKEN = re.compile(rf"[^\w?{_EMOJI}]+|_")
_SPLIT_SYMBOLS = re.compile(rf"([?{_EMOJI}])")
_DIGITS = re.compile(r"\d+")
_CHAR_NGRAMS = range(2, 6)
#: A long message is read by its first and last words: that is where requests and goodbyes are, and it keeps
#: a 400-word message under 3 ms instead of 15 (the rules still read all of it).
_ENDS = 40
#: Replies this short ('ok', 'no thanks', '👍') are a small, closed set: each also counts as a feature whole.
_WHOLE_MESSAGE_WORDS = 3


@lru_cache(maxsize=256)  # each decision's rules and model read the same message
def _plain(text: str) -> str:
    """Casefolded text without accents or apostrophes ('Où' -> 'ou', "that's" -> 'thats')."""
    plain = text.casefold()
    if not plain.isascii():
        decomposed = unicodedata.normalize("NFKD", plain)
        plain = "".join(char for char in decomposed if not unicodedata.combining(char))
    return _APOSTROPHES.sub("", plain)


def normalise(text: str) -> str:
    """Lowercase, strip accents, apostrophes, punctuation and emoji, and collapse whitespace."""
    return " ".join(re.sub(r"[\W_]+", " ", _plain(text)).split())


def tokens(text: str) -> list[str]:
    """Words, with each emoji and '?' (a question: '¿' folds to it) kept as a token of its own, and every
    number as '0' (an order number says nothing about what the customer wants)."""
    plain = _DIGITS.sub("0", _EMOJI_MODIFIERS.sub("", _plain(text)).replace("\u00bf", "?"))
    return _NOT_A_TOKEN.sub(" ", _SPLIT_SYMBOLS.sub(r" \1 ", plain)).split()


def features(text: str) -> list[str]:
    """Length, a short message whole, word unigrams and bigrams, and character 2-5-grams inside each padded
    word (sklearn's 'char_wb')."""
    words = tokens(text)
    if len(words) > 2 * _ENDS:
        words = words[:_ENDS] + words[-_ENDS:]
    found = [f"n {min(len(words), _WHOLE_MESSAGE_WORDS + 1)}"]  # how long: 'ok' alone is not 'ok, thanks'
    if len(words) <= _WHOLE_MESSAGE_WORDS:
        found.append(f"m {' '.join(words)}")
    found += [f"w {word}" for word in words]
    found += [f"b {first} {second}" for first, second in zip(["^", *words], [*words, "$"], strict=True)]
    for word in words:
        padded = f" {word} "
        for size in _CHAR_NGRAMS:
            found += [f"c {padded[i : i + size]}" for i in range(len(padded) - size + 1)]
    return found


def weighted(text: str, idf: dict[str, float]) -> dict[str, float]:
    """Sublinear tf-idf weights of the text's known features, scaled to unit length (sklearn's TfidfVectorizer)."""
    counts = Counter(feature for feature in features(text) if feature in idf)
    values = {feature: (1.0 + math.log(count)) * idf[feature] for feature, count in counts.items()}
    norm = math.sqrt(sum(value * value for value in values.values())) or 1.0
    return {feature: value / norm for feature, value in values.items()}
