"""Passages and the in-memory index a process searches them with.

An article (a title and a Markdown body) is split into passages of at most PASSAGE_WORDS words, at its sub-headings
and paragraphs; each passage keeps its article's title, so "What bulbs do the lamps use?" stays findable from a
passage that only says "E27, up to 12 W". A passage's terms are computed once, when the article is written
(`passage_terms`), and stored with it; a process builds its Index from them when the knowledge base's version
changes, never per turn.

Ranking is BM25 over terms (title terms counted TITLE_BOOST times) plus, with weight GRAM_WEIGHT, BM25 over the
terms' character 3- and 4-grams (compounds, typos, inflections the stemmer misses). Whether a passage answers the
question at all is its *coverage*: the idf-weighted share of the question's terms the passage contains (a term the
passage lacks but whose grams it mostly shares counts in part). Below `min_coverage` the passage is not offered:
the AI says it does not know rather than answer from the wrong article.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from gateway.knowledge import reflow
from gateway.retrieval.text import grams, terms

PASSAGE_WORDS = 120
TITLE_BOOST = 2
GRAM_WEIGHT = 0.3
UNKNOWN_WEIGHT = 1.0  # an unknown term's idf, as a share of the rarest known term's
PARTIAL_GRAMS = 0.6  # share of a missing term's grams a passage must hold to count it in part
_K1, _B = 1.2, 0.75
_HEADING = re.compile(r"^ {0,3}#{1,6}[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")


@dataclass(frozen=True)
class Passage:
    id: str  # "<article id>#<n>"
    article: str  # the article's id
    title: str  # the article's title (and the passage's sub-heading, if any)
    text: str
    url: str = ""
    terms: dict[str, int] = field(default_factory=dict, compare=False)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "article": self.article, "title": self.title, "text": self.text, "url": self.url,
                "terms": self.terms}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Passage:
        return cls(data["id"], data["article"], data["title"], data["text"], data.get("url", ""),
                   dict(data.get("terms") or {}))

    @property
    def tokens(self) -> int:
        return approximate_tokens(self.title) + approximate_tokens(self.text)


def approximate_tokens(text: str) -> int:
    """What a passage costs in a prompt: about four characters a token (the usual figure for English and its
    neighbours)."""
    return len(text) // 4 + 1


def split_article(article: str, title: str, body: str, url: str = "") -> list[Passage]:
    """An article's passages: one per sub-heading section, each cut at paragraphs into PASSAGE_WORDS-word pieces."""
    pieces: list[tuple[str, str]] = []
    for heading, lines in _sections(body.splitlines()):
        paragraphs = [p.strip() for p in reflow(lines).split("\n\n") if p.strip()]
        chunk: list[str] = []
        for paragraph in paragraphs:
            if chunk and len(" ".join(chunk).split()) + len(paragraph.split()) > PASSAGE_WORDS:
                pieces.append((heading, "\n\n".join(chunk)))
                chunk = []
            chunk.append(paragraph)
        if chunk:
            pieces.append((heading, "\n\n".join(chunk)))
    if not pieces:
        pieces = [("", title)]
    passages = []
    for n, (heading, text) in enumerate(pieces):
        full_title = f"{title} — {heading}" if heading and heading != title else title
        passages.append(Passage(f"{article}#{n}", article, full_title, text, url, passage_terms(full_title, text)))
    return passages


def passage_terms(title: str, text: str) -> dict[str, int]:
    return dict(Counter(terms(title) * TITLE_BOOST + terms(text)))


def _sections(lines: list[str]) -> Iterable[tuple[str, list[str]]]:
    heading, body = "", list[str]()
    for line in lines:
        match = _HEADING.match(line)
        if match:
            if any(part.strip() for part in body):
                yield heading, body
            heading, body = match.group(1).strip(), []
        else:
            body.append(line)
    if any(part.strip() for part in body):
        yield heading, body


@dataclass(frozen=True)
class Hit:
    passage: Passage
    score: float
    coverage: float


class Index:
    """BM25 over the passages' terms and their grams, with postings so a search reads only the passages that share
    a term with the question (its cost grows with the matches, not with the knowledge base)."""

    def __init__(self, passages: Sequence[Passage]) -> None:
        self.passages = list(passages)
        self.postings: dict[str, list[tuple[int, int]]] = {}
        self.gram_postings: dict[str, list[tuple[int, int]]] = {}
        self.lengths: list[int] = []
        self.gram_lengths: list[int] = []
        for number, passage in enumerate(self.passages):
            for term, count in passage.terms.items():
                self.postings.setdefault(term, []).append((number, count))
            gram_counts = Counter(grams([t for t, c in passage.terms.items() if t[0] != "=" for _ in range(c)]))
            for gram, count in gram_counts.items():
                self.gram_postings.setdefault(gram, []).append((number, count))
            self.lengths.append(sum(passage.terms.values()))
            self.gram_lengths.append(sum(gram_counts.values()))
        self.average = (sum(self.lengths) / len(self.lengths)) if self.lengths else 1.0
        self.gram_average = (sum(self.gram_lengths) / len(self.gram_lengths)) if self.gram_lengths else 1.0

    def __len__(self) -> int:
        return len(self.passages)

    def idf(self, term: str) -> float:
        postings = self.postings.get(term)
        if not postings:  # a word the knowledge never uses: it lowers the coverage, but does not veto it
            return UNKNOWN_WEIGHT * self._idf(1)
        return self._idf(len(postings))

    def _idf(self, frequency: int) -> float:
        count, frequency = len(self.passages), max(frequency, 1)  # an unknown term weighs like the rarest known one
        return math.log(1 + (count - frequency + 0.5) / (frequency + 0.5))

    def search(self, question: str, previous: str = "", limit: int = 8,
               follow_up_words: int = 3) -> list[Hit]:
        """The passages that share a term with the question, best first, with their coverage. A question of at most
        `follow_up_words` terms ("and on weekends?") borrows the previous question's terms at half weight for the
        ranking; its coverage is judged on its own terms."""
        asked = terms(question)
        weights = dict.fromkeys(asked, 1.0)
        if len(weights) <= follow_up_words and previous:
            weights = {**dict.fromkeys(terms(previous), 0.5), **weights}
        if not weights or not self.passages:
            return []
        scores: dict[int, float] = {}
        for term, weight in weights.items():
            postings = self.postings.get(term, ())
            idf = self._idf(len(postings))
            for number, count in postings:
                norm = _K1 * (1 - _B + _B * self.lengths[number] / self.average)
                scores[number] = scores.get(number, 0.0) + weight * idf * count * (_K1 + 1) / (count + norm)
        query_grams = Counter(grams([term for term in weights if term[0] != "="]))  # a concept has no spelling
        gram_scores: dict[int, float] = {}
        for gram, weight in query_grams.items():
            postings = self.gram_postings.get(gram, ())
            idf = self._idf(len(postings))
            for number, count in postings:
                norm = _K1 * (1 - _B + _B * self.gram_lengths[number] / self.gram_average)
                gram_scores[number] = gram_scores.get(number, 0.0) + weight * idf * count * (_K1 + 1) / (count + norm)
        if gram_scores:
            top = max(gram_scores.values())
            best_term = max(scores.values()) if scores else top
            for number, value in gram_scores.items():  # grams rescaled to the term scores' range
                scores[number] = scores.get(number, 0.0) + GRAM_WEIGHT * best_term * value / top
        ranked = sorted(scores.items(), key=lambda item: -item[1])[: max(limit * 4, 16)]
        hits = [Hit(self.passages[n], s, self.coverage(asked, self.passages[n])) for n, s in ranked]
        hits.sort(key=lambda hit: (-round(hit.score, 6), -hit.coverage))  # a tie goes to the passage covering more
        return hits[:limit]

    def coverage(self, asked: list[str], passage: Passage) -> float:
        """The idf-weighted share of the question's terms that the passage holds (in part, by grams)."""
        total = held = 0.0
        own: set[str] | None = None
        for term in dict.fromkeys(asked):
            idf = self.idf(term)
            total += idf
            if term in passage.terms:
                held += idf
            elif not term.startswith("="):
                if own is None:
                    own = set(grams([t for t in passage.terms if t[0] != "="]))
                term_grams = set(grams([term]))
                share = len(term_grams & own) / len(term_grams) if term_grams else 0.0
                if share >= PARTIAL_GRAMS:
                    held += idf * share * 0.5
        return held / total if total else 0.0


def select(hits: Sequence[Hit], min_coverage: float, max_passages: int, token_budget: int,
           margin: float = 0.0) -> list[Hit]:
    """The passages a turn gives the model: those covering the question well enough, best first, at most
    `max_passages` and `token_budget` tokens (a passage that does not fit is skipped, a smaller one may follow).
    With `margin`, a passage scoring below (1 - margin) × the best is left out."""
    chosen: list[Hit] = []
    spent = 0
    for hit in hits:
        if len(chosen) >= max_passages:
            break
        if hit.coverage < min_coverage or (margin and chosen and hit.score < (1 - margin) * chosen[0].score):
            continue
        if spent + hit.passage.tokens > token_budget:
            continue
        chosen.append(hit)
        spent += hit.passage.tokens
    return chosen
