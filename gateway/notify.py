"""Notifiers tell human agents outside the inbox (webhooks, chat tools…) that a chat needs them."""

from __future__ import annotations

import abc
from typing import Any, ClassVar

from gateway.connector import ConnectorSettings


class NotifierSettings(ConnectorSettings):
    """Base for a notifier's settings model; unknown keys are errors."""


class Notifier(abc.ABC):
    """Base class for notifiers. Subclasses set `type` and `Settings` and implement notify()."""

    type: ClassVar[str]
    Settings: ClassVar[Any] = NotifierSettings

    def __init__(self, name: str, settings: Any) -> None:
        self.name = name
        self.settings = settings

    @abc.abstractmethod
    def notify(self, notification: dict[str, Any]) -> None:
        """Deliver one notification (an RQ job, retried with backoff when it raises; at least once: deduplicate
        on the notification's workspace and id)."""
