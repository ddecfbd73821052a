"""Logging: readable lines or one JSON object a line, and a log line that repeats at most once per interval (an
outage logs once a second, not once per request)."""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

CHATTY = ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy", "httpx", "rq.worker", "rq.scheduler")
CONTEXT = ("workspace", "conversation", "channel", "job", "worker")  # extra= fields a JSON line carries


class JSONFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, the context fields given as extra=, the traceback."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {"time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
                                "level": record.levelname.lower(), "logger": record.name,
                                "message": record.getMessage()}
        line.update({name: getattr(record, name) for name in CONTEXT if hasattr(record, name)})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def configure(level: str, style: str = "text") -> None:
    """Set up the root logger once per process."""
    handler = logging.StreamHandler()
    if style == "json":
        formatter: logging.Formatter = JSONFormatter()
        formatter.converter = time.gmtime
    else:
        formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for chatty in CHATTY:
        logging.getLogger(chatty).setLevel(logging.WARNING)  # a line per request or model call at INFO


class Throttled:
    """Log through `logger` at most once every `every` seconds, saying how many lines were held back."""

    def __init__(self, logger: logging.Logger, every: float = 1.0) -> None:
        self.logger = logger
        self.every = every
        self._last = 0.0
        self._held = 0
        self._lock = threading.Lock()

    def warning(self, message: str, *args: Any) -> None:
        self._log(logging.WARNING, message, args)

    def error(self, message: str, *args: Any) -> None:
        self._log(logging.ERROR, message, args)

    def due(self) -> int | None:
        """None while the line is held back; else how many were held back since the last one (and the interval
        starts again). For a line that is costly to compose: compose it only when it is due."""
        with self._lock:
            now = time.monotonic()
            if self._last and now - self._last < self.every:
                self._held += 1
                return None
            held, self._held, self._last = self._held, 0, now
        return held

    def _log(self, level: int, message: str, args: tuple[Any, ...]) -> None:
        held = self.due()
        if held is not None:
            self.logger.log(level, message + held_back(held), *args)


def held_back(count: int) -> str:
    return f" ({count} more like this since the last one)" if count else ""
