"""Baton: one shared inbox for an AI agent and a human support team."""

from __future__ import annotations

import pluggy

__version__ = "0.1.0"

hookimpl = pluggy.HookimplMarker("baton")

__all__ = ["__version__", "hookimpl"]
