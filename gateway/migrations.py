"""`baton migrate`: the steps that bring data written by an earlier release to this release's schema.

MIGRATIONS is a numbered list: step N brings schema N-1 data to schema N. To change a key's type or shape:

1. raise gateway.schema.VERSION to N and describe the new shape in schema.SHAPES;
2. append `Migration(N, your_function)` here: a function of the Redis client that converts every key of the old
   shape and returns a count of what it changed, with a docstring saying what changes and why. It must be safe to
   run again after an interruption (check each key's shape before converting it), and it names keys by the shapes
   of its own time (a pattern written out here, not today's gateway/keys.py, which later releases may change);
3. add its test to tests/test_migrations.py: data written the old way (by the earlier release's own code where it
   can be had from git: tests/upgrade/make_store.py), migrated, then read and written by today's code.

A new key, or a new field that is read with a default when absent, needs no step. A key whose type changes, a
value whose format changes (a JSON shape, an id's form), a key renamed, or a field whose meaning changes, does.

Every step runs while nothing else writes: `baton migrate` refuses while a worker's heartbeat is fresh, and marks
the SCHEMA hash `migrating` so that the state script of any release with schema versions refuses to write.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import redis

from gateway import keys, schema

log = logging.getLogger("baton.migrate")

WORKER_FRESH_MS = 10_000
_BATCH = 1_000


@dataclass(frozen=True)
class Migration:
    """Step `version`: brings schema `version - 1` data to schema `version`; `run` returns how much it changed."""

    version: int
    run: Callable[[redis.Redis], dict[str, int]]

    @property
    def summary(self) -> str:
        return (self.run.__doc__ or self.run.__name__).strip().splitlines()[0]


@dataclass
class Report:
    """What `migrate` did: the schema before and after, and each step's counts."""

    before: int
    after: int
    steps: list[tuple[Migration, dict[str, int]]] = field(default_factory=list)


class MigrationRefused(schema.SchemaMismatch):
    """`baton migrate` cannot run now (Baton is running, the data is newer, another migration holds it)."""


# --- step 1: histories from streams to lists --------------------------------------------------------------------

_HISTORY = re.compile(r"^baton:([^:]+):conv:([^:]+):messages$")
_REFERENCE = re.compile(r"^baton:([^:]+):(dedupe|sent):")
# hash old message id → new, while step 1 runs
_RENUMBERED = "baton:migrate:1:renumbered:%(workspace_id)s:%(conversation_id)s"
_REWRITTEN = "baton:migrate:1:rewritten"  # set of reference keys already rewritten (a rerun skips them)


def histories_to_lists(client: redis.Redis) -> dict[str, int]:
    """Conversation histories from Redis streams to lists of JSON entries, with message ids "<ms>-<place>".

    The releases up to commit 460e353 kept each history as a stream (4 KB preallocated per conversation) whose
    entry ids were "<ms>-<sequence>"; today's state script reads a list and finds a message by the place in its id.
    Each conversation is converted in one transaction: its entries (the JSON-encoded fields data, media and rich
    become JSON objects), the ids its hash refers to (ai_cursor, last_customer), its delivery states and its outbox;
    last_text becomes the short preview. Then the references to its messages from other keys (a provider's message
    id seen, a message sent by its provider id) are renumbered, and the old releases' worker heartbeats deleted.
    """
    counts = {"conversations": 0, "messages": 0, "references": 0}
    for name in _scan(client, "baton:*:conv:*:messages", kind="stream"):
        match = _HISTORY.match(name)
        converted = _history_to_list(client, name, match.group(1), match.group(2)) if match else 0
        counts["messages"] += converted
        counts["conversations"] += converted > 0
    references = (name for name in client.scan_iter(match="baton:*", count=5_000) if _REFERENCE.match(str(name)))
    for names in _chunks(references, _BATCH):
        counts["references"] += _renumber_references(client, names)
    for name in _scan(client, "baton:migrate:1:renumbered:*"):
        client.delete(name)
    client.delete(_REWRITTEN)  # last: until the maps are gone, it keeps a rerun from renumbering twice
    if _type_of(client, "baton:workers") == "zset":  # the old releases' heartbeats: today's are per queue
        client.delete("baton:workers")
    return counts


def _history_to_list(client: redis.Redis, name: str, workspace_id: str, conversation_id: str) -> int:
    prefix = f"baton:{workspace_id}:conv:{conversation_id}"
    with client.pipeline() as pipe:
        pipe.watch(name)
        if pipe.type(name) != "stream":  # converted by an earlier, interrupted run
            return 0
        entries: list[str] = []
        renumbered: dict[Any, Any] = {}
        for place, (old_id, fields) in enumerate(_stream_entries(pipe, name)):
            new_id = f"{old_id.split('-', 1)[0]}-{place}"
            entries.append(json.dumps(_entry(new_id, fields), ensure_ascii=False, separators=(",", ":")))
            if new_id != old_id:
                renumbered[old_id] = new_id
        exists = pipe.exists(prefix)
        conversation: Any = pipe.hmget(prefix, ["ai_cursor", "last_customer", "last_text"])
        delivery: Any = pipe.hgetall(f"{prefix}:delivery")
        outbox: Any = pipe.lrange(f"{prefix}:outbox", 0, -1)
        pipe.multi()
        pipe.delete(name)
        for start in range(0, len(entries), _BATCH):
            pipe.rpush(name, *entries[start:start + _BATCH])
        if exists:
            pipe.hset(prefix, mapping=_conversation_fields(conversation, renumbered))
        if delivery:
            pipe.delete(f"{prefix}:delivery")
            pipe.hset(f"{prefix}:delivery", mapping=_renumbered_delivery(delivery, renumbered))
        if outbox:
            pipe.delete(f"{prefix}:outbox")
            pipe.rpush(f"{prefix}:outbox", *[renumbered.get(mid, mid) for mid in outbox])
        if renumbered:
            parts = {"workspace_id": workspace_id, "conversation_id": conversation_id}
            pipe.hset(_RENUMBERED % parts, mapping=renumbered)
        pipe.execute()
    return len(entries)


def _stream_entries(client: Any, name: str) -> Iterator[tuple[str, dict[str, str]]]:
    after = "-"
    while True:
        batch = client.xrange(name, min=after, max="+", count=_BATCH)
        yield from batch
        if len(batch) < _BATCH:
            return
        after = f"({batch[-1][0]}"


def _entry(message_id: str, fields: dict[str, str]) -> dict[str, Any]:
    """A stream entry's fields as today's history entry: only what differs from the defaults."""
    entry: dict[str, Any] = {"id": message_id, "author": fields.get("author", ""), "text": fields.get("text", "")}
    for name in ("kind", "visibility", "agent", "agent_name"):
        if fields.get(name):
            entry[name] = fields[name]
    for name in ("data", "media", "rich"):
        value = json.loads(fields[name]) if fields.get(name) else None
        if value:
            entry[name] = value
    return entry


def _conversation_fields(found: list[str | None], renumbered: dict[str, str]) -> dict[Any, Any]:
    ai_cursor, last_customer, last_text = found
    fields = {"last_text": preview(last_text or "")}
    if ai_cursor:
        fields["ai_cursor"] = renumbered.get(ai_cursor, ai_cursor)
    if last_customer:
        fields["last_customer"] = renumbered.get(last_customer, last_customer)
    return fields


def _renumbered_delivery(delivery: dict[str, str], renumbered: dict[str, str]) -> dict[Any, Any]:
    """The delivery hash's fields are "<mid>", "<mid>:error" and "<mid>:tries"."""
    moved = {}
    for name, value in delivery.items():
        mid, colon, suffix = name.partition(":")
        moved[f"{renumbered.get(mid, mid)}{colon}{suffix}"] = value
    return moved


def _renumber_references(client: redis.Redis, names: list[str]) -> int:
    """"<cid>|<mid>" values (DEDUPE, SENT) pointing at renumbered messages, each rewritten once, keeping its TTL."""
    with client.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.get(name)
            pipe.sismember(_REWRITTEN, name)
        found = pipe.execute()
    targets = []
    for name, value, done in zip(names, found[::2], found[1::2], strict=True):
        conversation_id, bar, mid = (value or "").partition("|")
        if bar and not done:
            targets.append((name, conversation_id, mid, _REFERENCE.match(name).group(1)))  # type: ignore[union-attr]
    with client.pipeline(transaction=False) as pipe:
        for _, conversation_id, mid, workspace_id in targets:
            pipe.hget(_RENUMBERED % {"workspace_id": workspace_id, "conversation_id": conversation_id}, mid)
        renumbered = pipe.execute()
    with client.pipeline() as pipe:  # MULTI: each value with its "rewritten" mark, or neither
        for (name, conversation_id, _, _), new in zip(targets, renumbered, strict=True):
            if new is not None:
                pipe.set(name, f"{conversation_id}|{new}", keepttl=True)
                pipe.sadd(_REWRITTEN, name)
        pipe.execute()
    return sum(new is not None for new in renumbered)


def _chunks(items: Iterable[str], size: int) -> Iterator[list[str]]:
    chunk: list[str] = []
    for item in items:
        chunk.append(str(item))
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def preview(text: str) -> str:
    """The conversation hash's last_text: the state script's preview (the first 60 bytes at a character boundary)."""
    raw = text.encode()
    if len(raw) <= 60:
        return text
    return raw[:60].decode(errors="ignore") + "…"


def _scan(client: redis.Redis, match: str, kind: str | None = None) -> list[str]:
    """Every key matching, collected before any is changed (SCAN may return a key twice; these are distinct)."""
    found = dict.fromkeys(str(k) for k in client.scan_iter(match=match, count=5_000, _type=kind))
    return list(found)


MIGRATIONS: list[Migration] = [
    Migration(1, histories_to_lists),
]


# --- the runner --------------------------------------------------------------------------------------------------

def pending(state: schema.State) -> list[Migration]:
    """The steps data in `state` still needs, in order (an interrupted step first)."""
    start = state.migrating - 1 if state.migrating is not None else state.version
    return [m for m in MIGRATIONS if start is not None and m.version > start]


def running_workers(client: redis.Redis) -> list[str]:
    """Workers of any deployment on this Redis, of this release or an earlier one, seen in the last 10 s."""
    now = int(time.time() * 1000)
    found: list[str] = []
    for name in ["baton:workers", *_scan(client, "baton:*:workers")]:
        if _type_of(client, name) == "zset":
            found += [str(w) for w in client.zrangebyscore(name, now - WORKER_FRESH_MS, "+inf")]
    return found


def _type_of(client: redis.Redis, name: str) -> str:
    return str(client.type(name))


def migrate(client: redis.Redis, *, dry_run: bool = False, force: bool = False,
            progress: Callable[[str], None] = lambda _: None) -> Report:
    """Bring the data to schema.VERSION, one step at a time, each recorded as it ends (an interrupted run resumes at
    its step). Refuses while a worker runs (unless `force`) and when the data is newer than this release."""
    state = schema.read(client)
    if state.version is None and state.migrating is None:
        state = schema.State(schema.unversioned(client), None)
        if state.version and not dry_run:
            schema.stamp(client, state.version)
    if state.version is not None and state.version > schema.VERSION:
        raise MigrationRefused(schema.describe(state))
    steps = pending(state)
    workers = running_workers(client) if steps else []
    if workers and not force:
        raise MigrationRefused(f"Baton is running ({len(workers)} worker(s) sent a heartbeat in the last 10 s: "
                               f"{', '.join(sorted(workers)[:3])}): stop every gateway and worker first")
    before = state.version or 0
    report = Report(before, before)
    for migration in steps:
        if dry_run:
            report.steps.append((migration, {}))
            continue
        progress(f"step {migration.version}: {migration.summary}")
        client.hset(keys.SCHEMA, "migrating", migration.version)
        counts = migration.run(client)
        with client.pipeline() as pipe:
            pipe.hset(keys.SCHEMA, mapping={"version": migration.version, "migrated_at": int(time.time() * 1000)})
            pipe.hdel(keys.SCHEMA, "migrating")
            pipe.execute()
        report.steps.append((migration, counts))
        report.after = migration.version
        log.info("schema %d: %s", migration.version, counts)
    return report
