"""The AI model's circuit breaker, shared by every worker through Redis.

After `breaker.failures` failed answers in a row, the AI stops asking its model for `breaker.cool_down` seconds:
each conversation that needs an answer goes to a human at once, with the offline summary (the no-human timer and
the contact form apply as to any handover). When the cool-down has passed, one turn at a time tries the model again
(the probe); its answer closes the circuit, its failure opens it for another cool-down. Opening and closing are
events in every agent's inbox, and `/readyz` names a workspace whose circuit is open.

The healthy path costs one read of the breaker's hash per process and workspace a second, and no write.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import redis

from gateway import keys
from gateway.config import AIAgentConfig

CACHE_S = 1.0  # how stale a process's view of the breaker may be

# KEYS: the breaker's hash, the probe lock, the events stream. ARGV: model, error, failures to open, cool-down ms.
_FAILED = """
local now = redis.call('TIME')
now = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
if redis.call('HGET', KEYS[1], 'model') ~= ARGV[1] then redis.call('DEL', KEYS[1]) end
local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
redis.call('HSET', KEYS[1], 'model', ARGV[1], 'last_error', ARGV[2], 'last_failure_at', now)
redis.call('DEL', KEYS[2])
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
local expired = tonumber(redis.call('HGET', KEYS[1], 'until') or 0) <= now
if failures >= tonumber(ARGV[3]) and (state ~= 'open' or expired) then
  redis.call('HSET', KEYS[1], 'state', 'open', 'until', now + tonumber(ARGV[4]))
  if state ~= 'open' then
    redis.call('HSET', KEYS[1], 'opened_at', now)
    local event = {type = 'ai_agent.model', state = 'open', model = ARGV[1], failures = failures,
                   last_error = ARGV[2], ['until'] = now + tonumber(ARGV[4]), at = now}
    redis.call('XADD', KEYS[3], 'MAXLEN', '~', 10000, '*', 'data', cjson.encode(event))
  end
end
return redis.call('HGETALL', KEYS[1])
"""

# KEYS: the breaker's hash, the probe lock, the events stream. ARGV: model.
_SUCCEEDED = """
local state = redis.call('HGET', KEYS[1], 'state')
redis.call('DEL', KEYS[1], KEYS[2])
if state == 'open' then
  local now = redis.call('TIME')
  now = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
  local event = {type = 'ai_agent.model', state = 'closed', model = ARGV[1], at = now}
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', 10000, '*', 'data', cjson.encode(event))
end
return 1
"""


@dataclass(frozen=True)
class State:
    """The breaker as a process last read it."""

    model: str = ""
    failures: int = 0
    open: bool = False
    until: int = 0  # ms: while open, no turn asks the model before this
    opened_at: int = 0
    last_error: str = ""

    @classmethod
    def of(cls, data: dict[str, str], model: str) -> State:
        if not data or data.get("model") != model:  # a breaker of another model (the config changed): closed
            return cls(model=model)
        return cls(model=model, failures=int(data.get("failures") or 0), open=data.get("state") == "open",
                   until=int(data.get("until") or 0), opened_at=int(data.get("opened_at") or 0),
                   last_error=data.get("last_error", ""))

    def describe(self, now_ms: int) -> dict[str, Any]:
        """What the inbox and the API show: closed, open (no calls until `until`), or probing (one call allowed)."""
        state = "closed" if not self.open else ("open" if now_ms < self.until else "probing")
        return {"state": state, "model": self.model, "failures": self.failures, "last_error": self.last_error,
                "opened_at": self.opened_at or None, "until": self.until or None}


class Breaker:
    """One workspace's breaker for its AI agent's model."""

    _cache: dict[tuple[int, str], tuple[float, State]] = {}
    _lock = threading.Lock()

    def __init__(self, client: redis.Redis, workspace_id: str, agent: AIAgentConfig) -> None:
        self.redis = client
        self.workspace_id = workspace_id
        self.agent = agent
        self._key = keys.key(keys.MODEL_BREAKER, workspace_id=workspace_id)
        self._probe = keys.key(keys.MODEL_PROBE, workspace_id=workspace_id)
        self._events = keys.key(keys.EVENTS, workspace_id=workspace_id)

    def allow(self) -> bool:
        """May this turn ask the model? Always while the circuit is closed; after the cool-down, one turn at a time."""
        state = self.state()
        if not state.open:
            return True
        if time.time() * 1000 < state.until:
            return False
        probe_ms = int((self.agent.timeout + self.agent.retry_budget + 10) * 1000)  # a dead prober's lock lapses
        return bool(self.redis.set(self._probe, "1", nx=True, px=probe_ms))

    def failed(self, error: str) -> State:
        """A call failed: count it, and open the circuit when it is one too many."""
        settings = self.agent.breaker
        flat = self.redis.eval(_FAILED, 3, self._key, self._probe, self._events, self.agent.model, error[:300],
                               settings.failures, int(settings.cool_down * 1000))
        return self._remember(State.of(_pairs(flat), self.agent.model))

    def succeeded(self) -> None:
        """A call answered: forget the failures, and close the circuit if it was open."""
        if self.state().failures or self.state().open:
            self.redis.eval(_SUCCEEDED, 3, self._key, self._probe, self._events, self.agent.model)
            self._remember(State(model=self.agent.model))

    def state(self) -> State:
        """The breaker as stored, read at most once a second by this process."""
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(self._cache_key)
        if cached is not None and cached[0] > now:
            return cached[1]
        data: Any = self.redis.hgetall(self._key)
        return self._remember(State.of(data, self.agent.model))

    def describe(self) -> dict[str, Any]:
        return State.of(self.redis.hgetall(self._key), self.agent.model).describe(_now_ms())  # type: ignore[arg-type]

    @property
    def _cache_key(self) -> tuple[int, str]:
        return id(self.redis), self.workspace_id

    def _remember(self, state: State) -> State:
        with self._lock:
            self._cache[self._cache_key] = (time.monotonic() + CACHE_S, state)
        return state


def _pairs(flat: list[Any]) -> dict[str, str]:
    items = [item.decode() if isinstance(item, bytes) else str(item) for item in flat]
    return dict(zip(items[::2], items[1::2], strict=True))


def _now_ms() -> int:
    return int(time.time() * 1000)
