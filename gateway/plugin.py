"""Baton's public plugin API: the one module a plugin imports from. Everything else in Baton is internal.

A plugin declares the API version it was written for as `BATON_API_VERSION = "1.1"` in the module its entry
point names; Baton loads it when the major versions are equal and the plugin's minor version is at most
`API_VERSION`'s. Within a major version a minor release may add names, optional fields (with defaults) to the
normalised types, optional connector methods, hooks and hook arguments; it never removes, renames or changes the
meaning of anything here. docs/plugins.md is the guide.
"""

from __future__ import annotations

from gateway import hookimpl
from gateway.connector import (
    DELIVERY_STATES,
    Acknowledgement,
    Connector,
    ConnectorSettings,
    DeliveryState,
    DeliveryStatus,
    Inbound,
    Media,
    MediaContent,
    Outbound,
    SendLookup,
    SendResult,
    Template,
    WebhookConnector,
    WebhookRequest,
    WebhookSchema,
    Widget,
    WidgetConnector,
    degrade_to_text,
)
from gateway.errors import BadRequest, BatonError, ConfigError, SendFailed, SignatureInvalid
from gateway.knowledge import HANDOVER_TOOL, RANKED_NOTE, UNKNOWN_MARKER, KnowledgeEntry, parse_knowledge
from gateway.llm import import_litellm
from gateway.notify import Notifier, NotifierSettings
from gateway.retrieval import rank_knowledge

#: The version of this API: "<major>.<minor>".
API_VERSION = "1.1"

__all__ = [
    "API_VERSION",
    "DELIVERY_STATES",
    "HANDOVER_TOOL",
    "RANKED_NOTE",
    "UNKNOWN_MARKER",
    "Acknowledgement",
    "BadRequest",
    "BatonError",
    "ConfigError",
    "Connector",
    "ConnectorSettings",
    "DeliveryState",
    "DeliveryStatus",
    "Inbound",
    "KnowledgeEntry",
    "Media",
    "MediaContent",
    "Notifier",
    "NotifierSettings",
    "Outbound",
    "SendFailed",
    "SendLookup",
    "SendResult",
    "SignatureInvalid",
    "Template",
    "WebhookConnector",
    "WebhookRequest",
    "WebhookSchema",
    "Widget",
    "WidgetConnector",
    "degrade_to_text",
    "hookimpl",
    "import_litellm",
    "parse_knowledge",
    "rank_knowledge",
]
