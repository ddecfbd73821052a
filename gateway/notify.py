"""Notifiers tell human agents outside the inbox (webhooks, chat tools…) that a chat needs them."""

from __future__ import annotations

from typing import Any, ClassVar

from gateway.connector import ConnectorSettings


class NotifierSettings(ConnectorSettings):
    """Base for a notifier's settings model; unknown keys are errors."""


class Notifier:
    """Base class for notifiers. Subclasses set `type` and `Settings` and implement notify()."""

    type: ClassVar[str]
    Settings: ClassVar[Any] = NotifierSettings

    def __init__(self, name: str, settings: Any) -> None:
        self.name = name
        self.settings = settings

    def notify(self, notification: dict[str, Any]) -> None:
        """Deliver one notification (runs in a worker job); raise to have it retried."""
        raise NotImplementedError
