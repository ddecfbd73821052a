"""Knowledge retrieval on the labelled question set (issue 23): answer accuracy, "don't know" accuracy, the knowledge
a turn puts in the prompt and the CPU a turn spends on it, at 10, 300 and 3,000 articles.

Run: LITELLM_LOCAL_MODEL_COST_MAP=True python benchmarks/bench_knowledge.py [--split test2|test|train|all] [--misses]

Questions: tests/data/knowledge/{train,test}.jsonl (see gateway/retrieval/evaluate.py). The `sample` questions are
asked of the sample config's 8 articles at every size; the `helpcentre` questions of the first N articles of the
generated help centre, where a question whose article is not among them expects "I don't know".

Per size, two ways of giving the model its knowledge are timed per question, CPU only (time.process_time):
- retrieval (this release): search the process's index, build the system prompt from the passages given, and run
  the offline model on it;
- whole knowledge (before): render every article into the system prompt and run the offline model, which ranks the
  whole block itself.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway import ai  # noqa: E402
from gateway.config import AIAgentConfig, KnowledgeConfig  # noqa: E402
from gateway.knowledge import KnowledgeEntry, render_knowledge, strip_unknown  # noqa: E402
from gateway.retrieval import entries, retrieve  # noqa: E402
from gateway.retrieval.evaluate import DATA, build, evaluate, helpcentre_articles, read, sample_articles  # noqa: E402
from plugins import knowledge_model  # noqa: E402

SIZES = (10, 300, 3000)


def questions(split: str) -> list[dict[str, Any]]:
    names = ["train", "test", "test2"] if split == "all" else [split]
    return [row for name in names for row in read(DATA / f"{name}.jsonl")]


def relabel(rows: list[dict[str, Any]], titles: set[str]) -> list[dict[str, Any]]:
    """A help-centre question whose article is not in a smaller help centre expects "I don't know"."""
    return [{**row, "article": row["article"] if row["article"] in titles else None}
            if row["kb"] == "helpcentre" else row for row in rows]


def turn_cpu(rows: list[dict[str, Any]], index: Any, articles: list[tuple[str, str]], sample_index: Any,
             sample: list[tuple[str, str]], agent: AIAgentConfig) -> dict[str, float]:
    """Mean CPU ms per question: retrieval + prompt + offline model, against whole knowledge + offline model."""
    whole = {"helpcentre": render_knowledge([KnowledgeEntry(t, b) for t, b in articles]),
             "sample": render_knowledge([KnowledgeEntry(t, b) for t, b in sample])}
    retrieval_s = whole_s = 0.0
    tokens_whole = {kb: len(text) // 4 for kb, text in whole.items()}
    for row in rows:
        chosen = index if row["kb"] == "helpcentre" else sample_index
        user = [{"role": "user", "content": row["question"]}]
        started = time.process_time()
        hits = retrieve(chosen, row["question"], settings=agent.knowledge)
        system = ai.system_prompt(agent, entries(hits), ranked=True)
        strip_unknown(knowledge_model.respond([{"role": "system", "content": system}, *user]).text or "")
        retrieval_s += time.process_time() - started
        started = time.process_time()
        system = "\n\n".join([agent.system_prompt, whole[row["kb"]], ai.instructions()])
        knowledge_model.respond([{"role": "system", "content": system}, *user])
        whole_s += time.process_time() - started
    return {"retrieval_ms": 1000 * retrieval_s / len(rows), "whole_ms": 1000 * whole_s / len(rows),
            "whole_tokens": tokens_whole["helpcentre"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--split", choices=["test2", "test", "train", "all"], default="test2")
    parser.add_argument("--misses", action="store_true", help="list the questions answered wrongly")
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    options = parser.parse_args()
    agent = AIAgentConfig()
    settings: KnowledgeConfig = agent.knowledge
    rows = questions(options.split)
    sample = sample_articles()
    sample_index = build(sample)
    print(f"split: {options.split}, {len(rows)} questions; prompt_tokens {settings.prompt_tokens}, "
          f"max_passages {settings.max_passages}, min_coverage {settings.min_coverage}")
    print("| articles | answers right | don't know right | knowledge tokens/turn (mean, max) | whole knowledge tokens "
          "| index build s | turn CPU ms, retrieval | turn CPU ms, whole knowledge |")
    print("|---|---|---|---|---|---|---|---|")
    for size in (int(s) for s in options.sizes.split(",")):
        articles = helpcentre_articles(size)
        started = time.process_time()
        index = build(articles)
        built = time.process_time() - started
        labelled = relabel(rows, {title for title, _ in articles})
        figures = evaluate(labelled, {"sample": sample_index, "helpcentre": index}, settings)
        row = figures.row()
        cpu = turn_cpu(labelled, index, articles, sample_index, sample, agent)
        print(f"| {size:,} | {row['answers_right']} ({figures.answered_right}/{figures.answerable}) "
              f"| {row['dont_know_right']} ({figures.said_unknown}/{figures.unanswerable}) "
              f"| {row['knowledge_tokens_mean']}, {row['knowledge_tokens_max']} | {cpu['whole_tokens']:,} "
              f"| {built:.2f} | {cpu['retrieval_ms']:.2f} | {cpu['whole_ms']:.1f} |")
        if options.misses:
            print("\n".join(f"    {miss}" for miss in figures.misses))
    return 0


if __name__ == "__main__":
    sys.exit(main())
