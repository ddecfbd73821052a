"""A Redis store as JSON and back: every key under `baton:` with its type, value and time to live, streams with
their entry ids and consumer groups. Portable across servers (Valkey 9, Redis 7), unlike DUMP/RESTORE payloads."""

from __future__ import annotations

from typing import Any

import redis


def dump(client: redis.Redis) -> dict[str, Any]:
    """Every `baton:*` key of a client with decoded responses."""
    keys: dict[str, Any] = {}
    for name in sorted(str(k) for k in client.scan_iter(match="baton:*", count=1000)):
        kind = str(client.type(name))
        entry: dict[str, Any] = {"type": kind, "pttl": int(client.pttl(name))}
        if kind == "string":
            entry["value"] = client.get(name)
        elif kind == "hash":
            entry["value"] = dict(sorted(client.hgetall(name).items()))  # type: ignore[union-attr]
        elif kind == "list":
            entry["value"] = client.lrange(name, 0, -1)
        elif kind == "set":
            entry["value"] = sorted(client.smembers(name))  # type: ignore[arg-type]
        elif kind == "zset":
            entry["value"] = [[member, score] for member, score in client.zrange(name, 0, -1, withscores=True)]
        elif kind == "stream":
            entry["value"] = [[entry_id, fields] for entry_id, fields in client.xrange(name)]
            entry["groups"] = [{"name": g["name"], "last_delivered_id": g["last-delivered-id"]}
                               for g in client.xinfo_groups(name)]  # type: ignore[union-attr]
        else:
            raise ValueError(f"{name}: cannot dump a {kind}")
        keys[name] = entry
    return keys


def load(client: redis.Redis, keys: dict[str, Any]) -> None:
    """Write a dump into a server (its keys must not exist yet); times to live are kept."""
    pipe = client.pipeline(transaction=False)
    for name, entry in keys.items():
        kind, value = entry["type"], entry["value"]
        if kind == "string":
            pipe.set(name, value)
        elif kind == "hash":
            pipe.hset(name, mapping=value)
        elif kind == "list":
            pipe.rpush(name, *value)
        elif kind == "set":
            pipe.sadd(name, *value)
        elif kind == "zset":
            pipe.zadd(name, {member: score for member, score in value})
        elif kind == "stream":
            for entry_id, fields in value:
                pipe.xadd(name, fields, id=entry_id)
            for group in entry.get("groups", []):
                pipe.xgroup_create(name, group["name"], id=group["last_delivered_id"])
        if entry["pttl"] > 0:
            pipe.pexpire(name, entry["pttl"])
    pipe.execute()
