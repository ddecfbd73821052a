"""Measuring retrieval on the labelled question set (tests/data/knowledge): does a turn's knowledge hold the article
that answers, does the offline model answer from it, and does it say it does not know when nothing answers.

Two knowledge bases are used:
- `sample`: the sample config's knowledge (config.yaml's entries and knowledge/*.md), 8 articles;
- `helpcentre`: a larger help centre, the 36 hand-written articles of tests/data/knowledge/helpcentre.md and
  generated product sheets (`product_sheets`) up to the size asked (300 or 3,000 articles; the sheets of a smaller
  size are the first ones of a larger, so a question's article exists at every size from 300 on).

A question is `{"kb": "sample"|"helpcentre", "lang": "fr", "question": "…", "article": "<title>"|null}` (null: the
knowledge has no answer). The split into train.jsonl and test.jsonl (held out) was written before any tuning.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gateway.config import KnowledgeConfig
from gateway.knowledge import load_knowledge, split_markdown
from gateway.retrieval import retrieve
from gateway.retrieval.index import Index, Passage, approximate_tokens, split_article

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "knowledge"

_FAMILIES = str.split("""Aurora Nova Lyra Orion Vega Sol Luna Atlas Iris Mira Nora Pola Rio Siena Tila Umbra Vela Wren
Zola Alba Brisa Cora Dune Elba Fjord Gala Halo Ivo Juno Kira Lago Mist Nilo Opal Pico Quill Rhea Sora Tessa Vida""")
_VARIANTS = str.split("""Arc Bloom Cone Drop Edge Flux Glow Hive Isle Jade Knot Loop Mesa Nest Oval Pebble Quartz
Reed Slim Twist""")
_TYPES = ["floor lamp", "desk lamp", "pendant light", "wall light", "ceiling light", "bedside lamp", "spotlight",
          "garden light"]
_FINISHES = ["black", "white", "brass", "oak", "walnut", "sage green", "terracotta", "chrome", "linen", "smoke glass"]


def product_names(count: int) -> list[tuple[str, str]]:
    """(name, type) of `count` products, the same first ones whatever the count."""
    names: list[tuple[str, str]] = []
    for edition in ("", " Mini", " Max", " Duo"):
        for variant in _VARIANTS:
            for family in _FAMILIES:
                names.append((f"{family} {variant}{edition}", _TYPES[(len(names) * 7 + len(family)) % len(_TYPES)]))
    return names[:count]


def product_sheets(count: int) -> list[tuple[str, str]]:
    """`count` product specification articles, (title, body), deterministic."""
    sheets = []
    for number, (name, kind) in enumerate(product_names(count)):
        rng = random.Random(number)
        height = rng.randrange(12, 190)
        weight = rng.randrange(3, 90) / 10
        watts = rng.choice([6, 8, 10, 12, 15])
        socket = rng.choice(["E27", "E14", "GU10", "built-in LED"])
        finishes = ", ".join(rng.sample(_FINISHES, 3))
        dimmable = rng.choice(["It is dimmable.", "It is not dimmable."])
        cable = rng.choice([150, 180, 200, 250, 300])
        sheets.append((f"{name} {kind}: specifications", (
            f"The {name} {kind} is {height} cm tall and weighs {weight:.1f} kg. It takes a {socket} bulb of up to "
            f"{watts} W (not included). {dimmable} Cable length: {cable} cm. Available finishes: {finishes}.")))
    return sheets


def sample_articles() -> list[tuple[str, str]]:
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    knowledge = config["workspaces"][0]["ai_agent"]["knowledge"]
    return [(entry.question, entry.answer) for entry in load_knowledge(knowledge["entries"], knowledge["files"], ROOT)]


def helpcentre_articles(size: int = 300) -> list[tuple[str, str]]:
    written = [(entry.question, entry.answer) for entry in
               split_markdown((DATA / "helpcentre.md").read_text(encoding="utf-8"))]
    return written + product_sheets(max(size - len(written), 0))


def build(articles: Sequence[tuple[str, str]]) -> Index:
    passages: list[Passage] = []
    for number, (title, body) in enumerate(articles):
        passages.extend(split_article(f"a{number}", title, body))
    return Index(passages)


def read(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@dataclass
class Figures:
    answerable: int = 0
    answered_right: int = 0  # the offline model's answer is the labelled article's passage
    retrieved: int = 0  # the labelled article is among the passages given to the model
    unanswerable: int = 0
    said_unknown: int = 0
    prompt_tokens: list[int] = field(default_factory=list)
    seconds: float = 0.0
    misses: list[str] = field(default_factory=list)

    def row(self) -> dict[str, Any]:
        tokens = sorted(self.prompt_tokens) or [0]
        return {
            "answers_right": round(self.answered_right / self.answerable, 3) if self.answerable else None,
            "retrieved": round(self.retrieved / self.answerable, 3) if self.answerable else None,
            "dont_know_right": round(self.said_unknown / self.unanswerable, 3) if self.unanswerable else None,
            "answerable": self.answerable, "unanswerable": self.unanswerable,
            "knowledge_tokens_mean": round(sum(tokens) / len(tokens)), "knowledge_tokens_max": tokens[-1],
            "ms_per_question": round(1000 * self.seconds / max(len(self.prompt_tokens), 1), 3),
        }


def evaluate(questions: Sequence[dict[str, Any]], indexes: dict[str, Index],
             settings: KnowledgeConfig | None = None) -> Figures:
    """Run each question through a turn's retrieval and the offline model's choice (the first passage given, or
    "I don't know")."""
    figures = Figures()
    for row in questions:
        index = indexes[row["kb"]]
        started = time.process_time()
        hits = retrieve(index, row["question"], row.get("previous", ""), settings)
        figures.seconds += time.process_time() - started
        figures.prompt_tokens.append(sum(approximate_tokens(h.passage.title) + approximate_tokens(h.passage.text)
                                         for h in hits))
        titles = [hit.passage.title for hit in hits]
        expected = row.get("article")
        if expected is None:
            figures.unanswerable += 1
            if not hits:
                figures.said_unknown += 1
            else:
                figures.misses.append(f"[{row['lang']}] {row['question']!r}: expected no answer, got {titles[0]!r}")
        else:
            figures.answerable += 1
            if titles and titles[0] == expected:
                figures.answered_right += 1
            else:
                got = titles[0] if titles else "I don't know"
                figures.misses.append(f"[{row['lang']}] {row['question']!r}: expected {expected!r}, got {got!r}")
            if expected in titles:
                figures.retrieved += 1
    return figures
