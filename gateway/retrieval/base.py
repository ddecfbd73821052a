"""The knowledge base of a workspace, in Redis: articles, their passages (with their terms, computed when the article
is written) and a version token that changes with every change. Every gateway and worker reads the same base; a turn
reads the version beside the conversation (one pipelined round trip, gateway.handover.store.Store.recent) and a
process rebuilds its in-memory Index only when the version it holds is no longer the current one.

The config's knowledge (`ai_agent.knowledge`: entries and Markdown files) is written into the base when it differs
from what was written last (its digest is kept in KB_CONFIG): at start-up, or by the first turn of an empty base.
Articles added through the API are the admin's (`origin: admin`) and a config change leaves them alone.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import redis

from gateway import keys
from gateway.errors import NotFound
from gateway.knowledge import KnowledgeEntry
from gateway.retrieval.index import Index, Passage, split_article

MAX_TITLE = 300
MAX_BODY = 200_000


@dataclass
class Article:
    id: str
    title: str
    body: str
    source: str = ""  # where it came from: a file name, "inline", an upload's name, a URL
    url: str = ""  # a link the widget may show the customer
    origin: str = "admin"  # "config" (rewritten when the config's knowledge changes) or "admin"
    updated_at: int = 0  # ms
    passages: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_json(cls, raw: str) -> Article:
        data = json.loads(raw)
        return cls(**{name: data[name] for name in cls.__dataclass_fields__ if name in data})


def config_articles(entries: Sequence[KnowledgeEntry]) -> list[Article]:
    """The config's entries as articles, with ids that stay the same from one start to the next."""
    articles, seen = [], set[str]()
    for entry in entries:
        digest = hashlib.sha256(f"{entry.source}\n{entry.question}".encode()).hexdigest()[:12]
        article_id = f"cfg-{digest}"
        if article_id in seen:
            continue
        seen.add(article_id)
        articles.append(Article(article_id, entry.question, entry.answer, entry.source, origin="config"))
    return articles


def new_id(title: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", title.casefold()).strip("-")[:40] or "article"
    return f"{slug}-{uuid.uuid4().hex[:6]}"


class KnowledgeBase:
    """One workspace's knowledge base in Redis."""

    def __init__(self, client: redis.Redis, workspace_id: str) -> None:
        self.redis = client
        self.workspace_id = workspace_id
        parts = {"workspace_id": workspace_id}
        self.version_key = keys.KB_VERSION % parts
        self.articles_key = keys.KB_ARTICLES % parts
        self.passages_key = keys.KB_PASSAGES % parts
        self.config_key = keys.KB_CONFIG % parts

    def version(self) -> str | None:
        value: Any = self.redis.get(self.version_key)
        return str(value) if value is not None else None

    def articles(self) -> list[Article]:
        raw: Any = self.redis.hgetall(self.articles_key)
        return sorted((Article.from_json(value) for value in raw.values()), key=lambda a: (a.title.casefold(), a.id))

    def article(self, article_id: str) -> Article:
        raw: Any = self.redis.hget(self.articles_key, article_id)
        if raw is None:
            raise NotFound(f"no article {article_id!r}")
        return Article.from_json(raw)

    def passages(self, article: Article) -> list[Passage]:
        if not article.passages:
            return []
        raw: Any = self.redis.hmget(self.passages_key, article.passages)
        return [Passage.from_json(json.loads(value)) for value in raw if value]

    def put(self, article: Article) -> Article:
        """Write an article (new or changed) and its passages; the version changes, so every process re-indexes."""
        article.updated_at = int(time.time() * 1000)
        passages = split_article(article.id, article.title, article.body, article.url)
        article.passages = [p.id for p in passages]
        self._change(write=[(article, passages)], remove=[article.id])
        return article

    def put_many(self, articles: Sequence[Article], remove: Sequence[str] = ()) -> None:
        """Write several articles and remove others (a file imported again), in one change."""
        now = int(time.time() * 1000)
        written = []
        for article in articles:
            article.updated_at = now
            passages = split_article(article.id, article.title, article.body, article.url)
            article.passages = [p.id for p in passages]
            written.append((article, passages))
        self._change(write=written, remove=[*remove, *(a.id for a in articles)])

    def delete(self, article_id: str) -> None:
        self.article(article_id)
        self._change(write=[], remove=[article_id])

    def sync_config(self, entries: Sequence[KnowledgeEntry]) -> bool:
        """Write the config's knowledge into the base if it is not what was written last; whether it was."""
        articles = config_articles(entries)
        digest = hashlib.sha256(json.dumps([[a.id, a.title, a.body, a.source] for a in articles]).encode()).hexdigest()
        if self.redis.get(self.config_key) == digest and self.version() is not None:
            return False
        current = [a.id for a in self._all() if a.origin == "config"]
        now = int(time.time() * 1000)
        written = []
        for article in articles:
            article.updated_at = now
            passages = split_article(article.id, article.title, article.body, article.url)
            article.passages = [p.id for p in passages]
            written.append((article, passages))
        self._change(write=written, remove=current, config_digest=digest)
        return True

    def snapshot(self) -> tuple[str | None, list[Passage]]:
        """The version and every passage, read together (one MULTI, so they agree)."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.get(self.version_key)
        pipe.hgetall(self.passages_key)
        version, raw = pipe.execute()
        passages = [Passage.from_json(json.loads(value)) for value in raw.values()]
        passages.sort(key=lambda p: p.id)
        return (str(version) if version is not None else None), passages

    def _all(self) -> list[Article]:
        raw: Any = self.redis.hgetall(self.articles_key)
        return [Article.from_json(value) for value in raw.values()]

    def _change(self, write: list[tuple[Article, list[Passage]]], remove: list[str],
                config_digest: str | None = None) -> None:
        """Remove the articles `remove` (and their passages), write `write`, change the version: one transaction,
        made again if another change touched the base meanwhile."""
        while True:
            with self.redis.pipeline(transaction=True) as pipe:
                try:
                    pipe.watch(self.articles_key)
                    old: list[str] = []
                    if remove:
                        raw: Any = pipe.hmget(self.articles_key, remove)
                        for value in raw:
                            if value:
                                old.extend(Article.from_json(value).passages)
                    pipe.multi()
                    if remove:
                        pipe.hdel(self.articles_key, *remove)
                    if old:
                        pipe.hdel(self.passages_key, *old)
                    for article, passages in write:
                        pipe.hset(self.articles_key, article.id, article.to_json())
                        if passages:
                            pipe.hset(self.passages_key, mapping={
                                p.id: json.dumps(p.to_json(), ensure_ascii=False) for p in passages})
                    if config_digest is not None:
                        pipe.set(self.config_key, config_digest)
                    pipe.set(self.version_key, uuid.uuid4().hex)
                    pipe.execute()
                    return
                except redis.WatchError:
                    continue


class Indexes:
    """A process's indexes, one per workspace, each kept while the base's version is the one it was built from."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[str, tuple[str | None, Index]] = {}
        self._synced: set[str] = set()

    def get(self, base: KnowledgeBase, version: str | None, entries: Sequence[KnowledgeEntry] = ()) -> Index:
        """The index of `base` at `version` (read by the caller, e.g. beside the conversation); built now only when
        this process holds another version. The first time, and for a base never written (version None), the
        config's knowledge is written into the base first where it changed."""
        held = self._held.get(base.workspace_id)
        if held is not None and version is not None and held[0] == version:
            return held[1]
        with self._lock:
            held = self._held.get(base.workspace_id)
            if held is not None and version is not None and held[0] == version:
                return held[1]
            if version is None or base.workspace_id not in self._synced:
                base.sync_config(entries)
                self._synced.add(base.workspace_id)
            loaded, passages = base.snapshot()
            index = Index(passages)
            self._held[base.workspace_id] = (loaded, index)
            return index

    def forget(self) -> None:
        with self._lock:
            self._held.clear()
            self._synced.clear()
