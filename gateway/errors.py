"""Baton's small error vocabulary, mapped to HTTP once in gateway.web.app."""

from __future__ import annotations

import redis


class BatonError(Exception):
    """Base class; `status` is the HTTP status a request boundary maps it to."""

    status = 500

    def __init__(self, reason: str, **details: object) -> None:
        super().__init__(reason)
        self.reason = reason
        self.details = details


class ConfigError(BatonError):
    """The configuration is invalid; the message names the YAML path."""


class ModelNotConfigured(ConfigError):
    """The AI agent's model lacks its provider's credentials (said once when a worker starts)."""


class NoAnswer(BatonError):
    """The model's call succeeded but its completion holds nothing to say (no choices, an empty message)."""


class BadRequest(BatonError):
    status = 400


class PayloadTooLarge(BatonError):
    status = 413


class RateLimited(BatonError):
    """Too many requests: `retry_after` is in seconds."""

    status = 429

    def __init__(self, reason: str, retry_after: int) -> None:
        super().__init__(reason, retry_after=retry_after)
        self.retry_after = retry_after


class Unavailable(BatonError):
    """The store (Redis) cannot be reached, or a write is not yet on enough replicas: try again shortly."""

    status = 503


class CommitUnknown(Unavailable, redis.ConnectionError):
    """Redis did not answer a change (the connection dropped or timed out after it was sent): it may or may not have
    been made. Made again with the same idempotency key, or the same turn stamp, it takes effect once. It is a
    redis.ConnectionError too, so that every loop that rides out a lost Redis rides this out as well."""


class SignatureInvalid(BatonError):
    status = 403


class Unauthorized(BatonError):
    status = 401


class Forbidden(BatonError):
    status = 403


class NotFound(BatonError):
    status = 404


class UnknownChannel(NotFound):
    """No channel of that name is configured."""


class Conflict(BatonError):
    """The request does not fit the current state (e.g. another agent owns it)."""

    status = 409


class ChannelUnavailable(BatonError):
    """The channel is configured but disabled (e.g. missing credentials)."""

    status = 503


class SendFailed(BatonError):
    """An outbound message could not be delivered. `retryable`: it was not sent and may be tried again;
    `maybe_sent`: the provider may have taken it (a read timeout), so Baton will not send it again by itself;
    `final`: sending the same message again cannot help (not on WhatsApp, blocked, the window closed), so the
    inbox does not offer "Send again"."""

    def __init__(self, reason: str, *, retryable: bool, maybe_sent: bool = False, final: bool = False,
                 **details: object) -> None:
        super().__init__(reason, **details)
        self.retryable = retryable
        self.maybe_sent = maybe_sent
        self.final = final


class ModelFailed(BatonError):
    """The AI model did not answer a request made for an admin ("Try the AI")."""

    status = 502
