"""The shape of Baton's data in Redis, as one number: the schema version, kept in the SCHEMA hash.

A release reads and writes exactly one schema (VERSION). Data of another schema is refused, with what to do, by
`baton serve`, `baton worker`, `baton check`, `/readyz` and the state script itself (so a process of another
release fails its writes with 503 instead of mixing shapes); `baton migrate` brings older data forward through the
steps in gateway/migrations.py.

The SCHEMA hash holds `version` (the data's schema), `migrated_at` (ms), and `migrating` (the version a running or
interrupted `baton migrate` is bringing the data to: nothing may write meanwhile). Data written before schema
versions existed has no SCHEMA hash: it is schema 0 when any conversation history is still a Redis stream (the
releases up to commit 460e353), else schema 1, and an empty store is stamped with VERSION when first used.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

import redis

from gateway import keys
from gateway.errors import Unavailable

VERSION = 1

#: What each schema's data looks like, for the messages that name them.
SHAPES = {
    0: "conversation histories as Redis streams (the releases before schema versions, up to commit 460e353)",
    1: "conversation histories as lists of JSON entries whose ids carry their place",
}

# Keys that say nothing about the shape of the data: an empty store may hold them.
_NOT_DATA = re.compile(r"^baton:(schema|readyz|secret|workers|worker:.*|leader:.*"
                       r"|[^:]+:(workers|worker:.*|leader:.*))$")
_SCAN_COUNT = 5_000


class SchemaMismatch(Unavailable):
    """The data in Redis is of another schema than this release's: refused (503) until it is migrated."""


@dataclass(frozen=True)
class State:
    """The schema of the data as stored: `version` None when the store carries none (before schema versions, or
    empty), `migrating` the version a `baton migrate` is bringing it to (None when none is under way)."""

    version: int | None
    migrating: int | None

    @property
    def current(self) -> bool:
        return self.version == VERSION and self.migrating is None


def read(client: redis.Redis) -> State:
    version, migrating = client.hmget(keys.SCHEMA, ["version", "migrating"])  # type: ignore[misc]
    return State(_number(version), _number(migrating))


def _number(value: Any) -> int | None:
    if value is None:
        return None
    return int(value.decode() if isinstance(value, bytes) else value)


def unversioned(client: redis.Redis) -> int:
    """The schema of a store without a SCHEMA hash: VERSION when it holds no data yet, 0 when a conversation history
    is a stream, else 1. One SCAN of the keyspace (once per store: the answer is then stamped)."""
    found_data = False
    for name in client.scan_iter(match="baton:*", count=_SCAN_COUNT):
        text = name.decode() if isinstance(name, bytes) else str(name)
        if _NOT_DATA.match(text):
            continue
        found_data = True
        if text.endswith(":messages") and ":conv:" in text and _type(client, text) == "stream":
            return 0
    return 1 if found_data else VERSION


def _type(client: redis.Redis, name: str) -> str:
    kind: Any = client.type(name)
    return kind.decode() if isinstance(kind, bytes) else str(kind)


def stamp(client: redis.Redis, version: int) -> None:
    """Record the data's schema (after a migration step, or on a store that had none)."""
    client.hset(keys.SCHEMA, mapping={"version": version, "migrated_at": int(time.time() * 1000)})


def ensure(client: redis.Redis) -> State:
    """The store's schema, stamped first when it carries none and its shape says which it is; SchemaMismatch when
    it is not this release's."""
    state = read(client)
    if state.version is None and state.migrating is None:
        found = unversioned(client)
        if found >= 1:
            client.hsetnx(keys.SCHEMA, "version", found)
            client.hsetnx(keys.SCHEMA, "migrated_at", int(time.time() * 1000))
            state = read(client)
        else:
            state = State(found, None)
    problem = describe(state)
    if problem:
        raise SchemaMismatch(problem, schema=state.version, expected=VERSION)
    return state


def describe(state: State) -> str:
    """What is wrong with data of this schema for this release, and what to do; "" when nothing is."""
    if state.migrating is not None:
        return (f"`baton migrate` is bringing the data in Redis to schema {state.migrating} (or was interrupted: run "
                "`baton migrate` again to finish it); nothing may write until it has finished")
    if state.version is None or state.version == VERSION:
        return ""
    if state.version < VERSION:
        shape = SHAPES.get(state.version, "")
        return (f"the data in Redis is schema {state.version}" + (f" ({shape})" if shape else "") + f"; this release "
                f"reads schema {VERSION}: stop every Baton process, then run `baton migrate` (see docs/deploy.md, "
                "Upgrading)")
    return (f"the data in Redis is schema {state.version}, written by a newer release of Baton; this release reads "
            f"schema {VERSION}: run the newer release, or restore the backup taken before the upgrade")
