"""Retrieval: the few passages of the knowledge base that answer a customer's question (gateway/retrieval/index.py),
kept in Redis for every process (gateway/retrieval/base.py)."""

from __future__ import annotations

from collections.abc import Sequence

from gateway.config import KnowledgeConfig
from gateway.knowledge import KnowledgeEntry
from gateway.retrieval.base import Article, Indexes, KnowledgeBase
from gateway.retrieval.index import Hit, Index, Passage, passage_terms, select, split_article

__all__ = ["Article", "Hit", "Index", "Indexes", "KnowledgeBase", "Passage", "entries", "rank_knowledge", "retrieve",
           "sources", "split_article"]


def retrieve(index: Index, question: str, previous: str = "", settings: KnowledgeConfig | None = None) -> list[Hit]:
    """The passages a turn gives the model for `question`: covering it well enough, best first, within the
    workspace's token budget."""
    settings = settings or KnowledgeConfig()
    hits = index.search(question, previous, limit=max(settings.max_passages * 3, 8))
    return select(hits, settings.min_coverage, settings.max_passages, settings.prompt_tokens)


def entries(hits: Sequence[Hit]) -> list[KnowledgeEntry]:
    """Passages as the prompt's knowledge entries (the title as the question, the passage as the answer)."""
    return [KnowledgeEntry(hit.passage.title, hit.passage.text, hit.passage.id) for hit in hits]


def rank_knowledge(knowledge: Sequence[KnowledgeEntry], question: str, previous: str = "",
                   min_coverage: float | None = None) -> list[KnowledgeEntry]:
    """The entries of a knowledge block that answer `question`, best first, by the ranking a turn uses (for a model
    given a whole knowledge block rather than retrieved passages)."""
    passages = [Passage(str(n), str(n), entry.question, entry.answer,
                        terms=passage_terms(entry.question, entry.answer)) for n, entry in enumerate(knowledge)]
    threshold = KnowledgeConfig().min_coverage if min_coverage is None else min_coverage
    hits = Index(passages).search(question, previous, limit=len(passages) or 1)
    return [knowledge[int(hit.passage.id)] for hit in hits if hit.coverage >= threshold]


def sources(hits: Sequence[Hit], unknown: bool, offline: bool) -> list[dict[str, str]]:
    """The passages an answer used, recorded on the AI's message: the offline model answers from the first passage
    given; a hosted model may have used any of them. None for an answer that says it does not know."""
    if unknown or not hits:
        return []
    used = hits[:1] if offline else hits
    return [{"article": hit.passage.article, "passage": hit.passage.id, "title": hit.passage.title.split(" — ")[0],
             **({"url": hit.passage.url} if hit.passage.url else {})} for hit in used]
