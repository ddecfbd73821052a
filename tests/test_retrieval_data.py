"""The labelled question set of knowledge retrieval (tests/data/knowledge) and its benchmark (issue 23)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gateway.retrieval.evaluate import DATA, helpcentre_articles, read, sample_articles

ROOT = Path(__file__).resolve().parents[1]
SPLITS = ("train", "test", "test2")
LANGUAGES = {"en", "es", "fr", "de", "pt", "it"}


def test_at_least_300_questions_in_six_languages_over_both_knowledge_bases() -> None:
    rows = [row for split in SPLITS for row in read(DATA / f"{split}.jsonl")]
    assert len(rows) >= 300
    for split in SPLITS:
        split_rows = read(DATA / f"{split}.jsonl")
        assert {row["lang"] for row in split_rows} == LANGUAGES, split
        assert {row["kb"] for row in split_rows} == {"sample", "helpcentre"}, split
        assert any(row["article"] is None for row in split_rows), split  # questions the knowledge cannot answer


@pytest.mark.parametrize("split", SPLITS)
def test_every_labelled_article_exists_at_300_and_3000_articles(split: str) -> None:
    sample = {title for title, _ in sample_articles()}
    small = {title for title, _ in helpcentre_articles(300)}
    large = {title for title, _ in helpcentre_articles(3000)}
    for row in read(DATA / f"{split}.jsonl"):
        if row["article"] is not None:
            assert row["article"] in (sample if row["kb"] == "sample" else small & large), row


def test_no_question_is_in_two_splits_for_the_same_knowledge() -> None:
    seen: dict[tuple[str, str], str] = {}
    for split in SPLITS:
        for row in read(DATA / f"{split}.jsonl"):
            key = (row["kb"], row["question"].casefold())
            assert seen.setdefault(key, split) == split, (row, seen[key])


def test_the_generated_help_centre_has_the_sizes_asked_and_its_smaller_sizes_are_its_first_articles() -> None:
    assert len(helpcentre_articles(300)) == 300 and len(helpcentre_articles(3000)) == 3000
    assert helpcentre_articles(3000)[:300] == helpcentre_articles(300)
    assert len({title for title, _ in helpcentre_articles(3000)}) == 3000


def test_the_benchmark_prints_its_table() -> None:
    done = subprocess.run([sys.executable, "benchmarks/bench_knowledge.py", "--split", "train", "--sizes", "10"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, check=True)
    lines = done.stdout.splitlines()
    assert lines[1].startswith("| articles | answers right | don't know right |")
    assert lines[3].startswith("| 10 | ")
