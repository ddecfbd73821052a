"""Fitting a text to a channel: the longest message a provider takes (Twilio 1,600 characters, Meta 4,096) is the
connector's `max_text`. A longer text is split where a reader would break it (a paragraph, a sentence, a word),
into at most MAX_PARTS messages; what is left after them is cut, and says so."""

from __future__ import annotations

import re

MAX_PARTS = 4  # a reply longer than this many messages is cut
CUT = "…"
PROMPT_TEXT = 4_000  # characters of one earlier message a model is shown (an old, oversized answer is not resent)
_BREAKS = (re.compile(r"\n\s*\n"), re.compile(r"\n"), re.compile(r"(?<=[.!?…])\s+"), re.compile(r"\s+"))


def fit(text: str, limit: int, max_parts: int = MAX_PARTS) -> list[str]:
    """`text` as messages of at most `limit` characters each, in order, never more than `max_parts`."""
    if len(text) <= limit:
        return [text]
    text = text.strip()
    parts: list[str] = []
    while len(text) > limit and len(parts) < max_parts - 1:
        cut = _break(text, limit)
        parts.append(text[:cut].rstrip())
        text = text[cut:].lstrip()
    if len(text) > limit:
        text = text[:_break(text, limit - len(CUT))].rstrip() + CUT
    return [*parts, text] if text or not parts else parts


def _break(text: str, limit: int) -> int:
    """Where to cut `text` to keep at most `limit` characters: the last paragraph, line, sentence or word break in
    its second half, else at `limit` exactly."""
    for pattern in _BREAKS:
        found = [m.end() for m in pattern.finditer(text, 0, limit + 1) if limit // 2 <= m.start() <= limit]
        if found:
            return found[-1]
    return limit


def max_tokens(limit: int) -> int:
    """The model's output cap for a channel of `limit` characters: about one message of text (3.5 characters a
    token), so an answer runs to a second message at most."""
    return max(64, round(limit / 3.5))
