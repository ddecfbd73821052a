"""The deployment a worker process serves: job functions take ids and find everything else here."""

from __future__ import annotations

import os

from gateway.config import load_config
from gateway.deployment import Deployment

_current: Deployment | None = None


def install(deployment: Deployment) -> None:
    global _current
    _current = deployment


def current() -> Deployment:
    """The installed deployment, or one loaded from BATON_CONFIG / BATON_REDIS_URL on first use."""
    global _current
    if _current is None:
        config = load_config(os.environ.get("BATON_CONFIG", "config.yaml"))
        _current = Deployment.build(config, os.environ["BATON_REDIS_URL"])
    return _current
