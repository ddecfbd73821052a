"""Customers for the fault suite: WhatsApp messages as Twilio delivers them (signed, retried on connection errors,
timeouts and 5xx with the same MessageSid) and webchat visitors as the widget writes (retried with the same
client_id). Every message sent goes in a Ledger with each attempt's outcome, for the audit."""

from __future__ import annotations

import itertools
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx
from twilio.request_validator import RequestValidator

from tests.fake_twilio import ACCOUNT_SID, AUTH_TOKEN
from tests.faults.lab import BUSINESS

RETRY_FOR = 90.0  # seconds a sender keeps retrying one message (Twilio gives up sooner; the suite wants certainty)
_validator = RequestValidator(AUTH_TOKEN)


@dataclass
class Sent:
    """One customer message: who sent it, on which channel, and what each attempt got back."""

    channel: str  # "wa" or a webchat channel's name
    sender: str  # "whatsapp:+…", or the visitor's id
    provider_id: str  # the MessageSid, or "<visitor>:<client_id>" as the gateway records it
    text: str
    attempts: list[tuple[float, float, int | str]] = field(default_factory=list)  # (start, end, status or error)
    acked_at: float = 0.0

    @property
    def acked(self) -> bool:
        return self.acked_at > 0


class Ledger:
    """Every message the test sent, in order, safe to fill from many threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sent: list[Sent] = []

    def add(self, sent: Sent) -> Sent:
        with self._lock:
            self._sent.append(sent)
        return sent

    def all(self) -> list[Sent]:
        with self._lock:
            return list(self._sent)

    def attempts(self) -> list[tuple[float, float, int | str]]:
        return [attempt for sent in self.all() for attempt in sent.attempts]


def signed(url: str, form: dict[str, str]) -> dict[str, str]:
    return {"X-Twilio-Signature": _validator.compute_signature(url, form)}


def whatsapp_form(sender: str, text: str, sid: str, **extra: str) -> dict[str, str]:
    return {"MessageSid": sid, "AccountSid": ACCOUNT_SID, "From": sender, "To": BUSINESS, "Body": text,
            "NumMedia": "0", "ProfileName": f"Customer {sender[-4:]}", **extra}


def new_sid() -> str:
    return "SM" + secrets.token_hex(16)


def _attempt(sent: Sent, call: Callable[[], httpx.Response], ok: tuple[int, ...], retry_for: float,
             pause: float = 0.25) -> Sent:
    """Call until a status in `ok` (retrying transport errors, timeouts, 429 and 5xx), for up to `retry_for` s."""
    deadline = time.monotonic() + retry_for
    while True:
        start = time.time()
        try:
            status: int | str = call().status_code
        except httpx.TransportError as exc:
            status = type(exc).__name__
        sent.attempts.append((start, time.time(), status))
        if status in ok:
            sent.acked_at = time.time()
            return sent
        if isinstance(status, int) and status < 500 and status != 429:
            return sent  # refused for good (4xx): never acknowledged
        if time.monotonic() > deadline:
            return sent
        time.sleep(pause)


def send_whatsapp(http: httpx.Client, base: str, ledger: Ledger, sender: str, text: str, sid: str = "",
                  retry_for: float = RETRY_FOR, channel: str = "wa") -> Sent:
    """One WhatsApp message, delivered as Twilio delivers it until acknowledged."""
    sid = sid or new_sid()
    url = f"{base}/webhooks/{channel}"
    form = whatsapp_form(sender, text, sid)
    sent = ledger.add(Sent(channel, sender, sid, text))
    return _attempt(sent, lambda: http.post(url, data=form, headers=signed(url, form)), (200,), retry_for)


def deliver_again(http: httpx.Client, base: str, sent: Sent, channel: str = "wa") -> int | str:
    """Twilio delivering a message once more (same MessageSid): the status it got."""
    url = f"{base}/webhooks/{channel}"
    form = whatsapp_form(sent.sender, sent.text, sent.provider_id)
    start = time.time()
    try:
        status: int | str = http.post(url, data=form, headers=signed(url, form)).status_code
    except httpx.TransportError as exc:
        status = type(exc).__name__
    sent.attempts.append((start, time.time(), status))
    return status


class Visitor:
    """A webchat visitor: a session, then messages posted with a client_id the widget would retry with."""

    def __init__(self, http: httpx.Client, base: str, channel: str = "chat", retry_for: float = RETRY_FOR) -> None:
        self.http, self.base, self.channel = http, base, channel
        answer: dict[str, Any] = {}

        def session() -> httpx.Response:
            response = http.post(f"{base}/webchat/{channel}/sessions")
            if response.status_code == 201:
                answer.update(response.json())
            return response

        holder = _attempt(Sent(channel, "", "", ""), session, (201,), retry_for)
        assert holder.acked, f"no visitor session: {holder.attempts[-3:]}"
        self.token, self.id = answer["token"], answer["visitor"]
        self.headers = {"Authorization": f"Bearer {self.token}"}
        self.count = itertools.count(1)

    def say(self, ledger: Ledger, text: str, retry_for: float = RETRY_FOR, base: str = "") -> Sent:
        client_id = f"c{next(self.count)}-{secrets.token_hex(3)}"
        sent = ledger.add(Sent(self.channel, self.id, f"{self.id}:{client_id}", text))
        url = f"{base or self.base}/webchat/{self.channel}/messages"
        body = {"text": text, "client_id": client_id}
        return _attempt(sent, lambda: self.http.post(url, json=body, headers=self.headers), (200, 201), retry_for)


class Traffic:
    """A steady stream of customer messages in the background: `rate` a second, round-robin over WhatsApp
    numbers and webchat visitors, each message retried until acknowledged."""

    def __init__(self, base: str | Callable[[], str], ledger: Ledger, rate: float = 10.0, whatsapp: int = 20,
                 visitors: int = 10, tag: str = "t", text: Callable[[int], str] | None = None,
                 threads: int = 24) -> None:
        self.base = base if callable(base) else (lambda: base)  # type: ignore[assignment]
        self.ledger, self.rate, self.tag = ledger, rate, tag
        self.text = text or (lambda n: f"{tag}{n} How long does shipping take?")
        self.http = httpx.Client(timeout=15, limits=httpx.Limits(max_connections=threads * 2))
        self.numbers = [f"whatsapp:+1555{secrets.randbelow(10**7):07d}" for _ in range(whatsapp)]
        self.visitors = [Visitor(self.http, self.base()) for _ in range(visitors)]
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="traffic")
        self.futures: list[Future[Sent]] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.sent = 0

    def __enter__(self) -> Traffic:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        senders: list[Any] = [*self.numbers, *self.visitors]
        for n in itertools.count():
            if self.stopping.wait(1 / self.rate):
                return
            self.futures.append(self.pool.submit(self._send, senders[n % len(senders)], self.text(n)))
            self.sent += 1

    def _send(self, who: Visitor | str, text: str) -> Sent:
        if isinstance(who, Visitor):
            return who.say(self.ledger, text, base=self.base())
        return send_whatsapp(self.http, self.base(), self.ledger, who, text)

    def stop(self) -> None:
        """Stop sending; wait until every message is acknowledged or given up on."""
        self.stopping.set()
        self.thread.join()
        for future in self.futures:
            future.result()
        self.pool.shutdown()
        self.http.close()
