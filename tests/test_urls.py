"""Every URL a user is pointed at — by the README, by the `baton serve` banner and by /openapi.json — requested of a
real `baton serve` on the sample config, with real ids: each answers what its user expects. A page or document is
a 2xx; a route that needs credentials is a 401 without them, then a 2xx with them (an agent token from
`baton agent create`, a visitor session, the inbox's cookie, Twilio's signature).

A URL that has no check below fails the test: whoever advertises a new URL says what it should answer.
"""

from __future__ import annotations

import itertools
import json
import re
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import pytest
import redis
import yaml
from twilio.request_validator import RequestValidator

from tests.conftest import Served, baton, free_port
from tests.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio

ROOT = Path(__file__).resolve().parent.parent
# the first test also starts `baton serve` and waits for a worker: a minute or more on a loaded machine
pytestmark = pytest.mark.timeout(300)
README = (ROOT / "README.md").read_text(encoding="utf-8")


@dataclass
class Site:
    """The served sample deployment, and what a user of each URL brings: credentials and things to act on."""

    url: str
    banner: str
    agent: dict[str, str]  # the Authorization header of `baton agent create alex --admin`'s token
    twilio: FakeTwilio
    http: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.http = httpx.Client(base_url=self.url, timeout=10)

    def visitor(self) -> dict[str, str]:
        response = self.http.post("/webchat/webchat/sessions")
        assert response.status_code == 201, response.text
        return {"Authorization": f"Bearer {response.json()['token']}"}

    def say(self, visitor: dict[str, str], text: str) -> str:
        response = self.http.post("/webchat/webchat/messages", json={"text": text}, headers=visitor)
        assert response.status_code == 201, response.text
        return str(response.json()["conversation"])

    def conversation(self) -> str:
        """A new conversation with the AI."""
        return self.say(self.visitor(), "What are your opening hours?")

    def detail(self, cid: str) -> dict[str, Any]:
        return self.http.get(f"/api/conversations/{cid}", headers=self.agent).json()["conversation"]  # type: ignore[no-any-return]

    def awaiting_form(self) -> dict[str, str]:
        """A visitor who asked for a person whom nobody took in time: the contact form is out."""
        visitor = self.visitor()
        self.say(visitor, "I want to talk to a human")
        until(lambda: (self.http.get("/webchat/webchat/messages", headers=visitor).json()["conversation"]
                       or {}).get("form_pending"), "the contact form was sent")
        return visitor

    def failed_delivery(self) -> tuple[str, str]:
        """A WhatsApp conversation whose reply Twilio refused for a reason that may pass (the customer's phone
        unreachable, not a closed window, which sending again cannot mend): (conversation, message) to send again."""
        self.twilio.fail_next(400, 30003, "Unreachable destination handset")
        customer = f"whatsapp:+346{uuid.uuid4().int % 10**8:08d}"
        assert self.webhook({"MessageSid": "SM" + uuid.uuid4().hex, "From": customer, "To": "whatsapp:+14155238886",
                             "Body": "What are your opening hours?"}).status_code == 200
        cid = until(lambda: next((c["id"] for c in self.http.get("/api/conversations", headers=self.agent)
                                  .json()["conversations"] if c["sender"] == customer), None),
                    "the WhatsApp message started a conversation")
        mid = until(lambda: next((m["id"] for m in self.detail(cid)["messages"] if m.get("delivery") == "failed"),
                                 None), "Twilio refused the reply")
        return cid, mid

    def webhook(self, form: dict[str, str], signed: bool = True) -> httpx.Response:
        url = f"{self.url}/webhooks/whatsapp"
        headers = {"X-Twilio-Signature": RequestValidator(AUTH_TOKEN).compute_signature(url, form)} if signed else {}
        return self.http.post(url, data=form, headers=headers)


def until(found: Callable[[], Any], what: str, timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := found()):
        assert time.monotonic() < deadline, f"waited {timeout} s for: {what}"
        time.sleep(0.1)
    return value


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """`baton serve` as the README's quick start runs it, with WhatsApp connected to a fake Twilio, and a contact
    form after 1 s instead of 120 (so that its URL can be tried)."""
    here = tmp_path_factory.mktemp("served")
    shutil.copytree(ROOT / "knowledge", here / "knowledge")
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    workspace = config["workspaces"][0]
    workspace["handover"]["no_human_timeout"] = 1
    with FakeTwilio() as twilio, pytest.MonkeyPatch.context() as env:
        whatsapp = next(c for c in workspace["channels"] if c["type"] == "twilio_whatsapp")
        whatsapp["api_base_url"] = twilio.base_url
        (here / "config.yaml").write_text(yaml.safe_dump(config))
        env.setenv("TWILIO_ACCOUNT_SID", ACCOUNT_SID)
        env.setenv("TWILIO_AUTH_TOKEN", AUTH_TOKEN)
        env.setenv("TWILIO_WHATSAPP_FROM", "whatsapp:+14155238886")
        served = Served(here / "config.yaml", free_port(), log=here / "serve.log")
        try:
            banner = until(lambda: "Webhook:" in served.output() and served.output(), "the banner")
            created = baton("agent", "create", "alex", "--name", "Alex", "--admin", cwd=here)
            assert created.returncode == 0, created.stderr
            token = created.stdout.strip().splitlines()[-1]
            site = Site(served.url, banner, {"Authorization": f"Bearer {token}"}, twilio)
            # the checks that need an answer wait for a worker (on a loaded machine, one takes a minute to start)
            until(lambda: site.http.get("/readyz").status_code == 200, "/readyz: a worker's first heartbeat", 180)
            yield site
            site.http.close()
        finally:
            served.stop()


# --- what each URL answers ---------------------------------------------------------------------------------------

def needs(site: Site, method: str, path: str, credentials: dict[str, str], expected: int, **request: Any) -> None:
    """A 401 without the credentials, `expected` with them."""
    refused = site.http.request(method, path, **request)
    assert refused.status_code == 401, f"{method} {path} without credentials: {refused.status_code} {refused.text}"
    answer = site.http.request(method, path, headers=credentials, **request)
    assert answer.status_code == expected, f"{method} {path}: {answer.status_code} {answer.text}"


def stream(site: Site, path: str, credentials: dict[str, str]) -> None:
    """An event stream: a 401 without credentials, then a 200 that starts to stream."""
    assert site.http.get(path).status_code == 401, path
    with site.http.stream("GET", path, headers=credentials) as response:
        assert response.status_code == 200, (path, response.read())
        assert response.headers["content-type"].startswith("text/event-stream")
        assert next(response.iter_lines()).startswith("retry: ")


def page(site: Site, path: str, media_type: str = "text/html") -> None:
    response = site.http.get(path, follow_redirects=True)
    assert response.status_code == 200, (path, response.text)
    assert response.headers["content-type"].startswith(media_type), path


def ready(site: Site) -> None:
    until(lambda: site.http.get("/readyz").status_code == 200, "/readyz: ready (a worker's first heartbeat)")
    assert site.http.get("/readyz").json()["status"] == "ready"


def openapi(site: Site) -> None:
    page(site, "/openapi.json", "application/json")
    assert site.http.get("/openapi.json").json()["paths"]


def inbox_session(site: Site) -> None:
    assert site.http.get("/inbox/session").status_code == 401
    signed_in = site.http.post("/inbox/session", json={"token": site.agent["Authorization"][7:]})
    assert signed_in.status_code == 200, signed_in.text
    cookie = {"Cookie": f"baton_session={signed_in.cookies['baton_session']}"}
    assert site.http.get("/inbox/session", headers=cookie).status_code == 200
    site.http.cookies.clear()


def sign_out(site: Site) -> None:
    signed_in = site.http.post("/inbox/session", json={"token": site.agent["Authorization"][7:]})
    cookie = f"baton_session={signed_in.cookies['baton_session']}"
    site.http.cookies.clear()
    refused = site.http.post("/inbox/session/delete", headers={"Cookie": cookie})
    assert refused.status_code == 403, refused.text  # a cross-site form posts no X-CSRF-Token
    out = site.http.post("/inbox/session/delete", headers={"Cookie": cookie, "X-CSRF-Token": signed_in.json()["csrf"]})
    assert out.status_code == 200 and out.json() == {"signed_out": True}
    assert site.http.get("/inbox/session", headers={"Cookie": cookie}).status_code == 401


def whatsapp_webhook(site: Site) -> None:
    status = {"MessageSid": "SM" + "0" * 32, "MessageStatus": "delivered", "From": "whatsapp:+14155238886",
              "To": "whatsapp:+34600000000"}
    assert site.webhook(status, signed=False).status_code == 403  # README: signature-checked, 403 otherwise
    answer = site.webhook(status)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/xml"), answer.text


def publish(site: Site, method: str, path: str) -> None:
    needs(site, method, path, site.agent, 200, json={"published": False})
    assert site.http.get(path, headers=site.agent).json()["ai_agent"]["published"] is False
    needs(site, method, path, site.agent, 200, json={"published": True})


def presence(site: Site, method: str, path: str) -> None:
    needs(site, method, path, site.agent, 200, json={"status": "away"})
    assert site.http.request(method, path, headers=site.agent, json={"status": "asleep"}).status_code == 400
    needs(site, method, path, site.agent, 200, json={"status": "online"})


def assignment(site: Site, method: str, path: str) -> None:
    """An admin sets automatic assignment, then gives config.yaml's back."""
    needs(site, method, path, site.agent, 200, json={"mode": "balanced", "capacity": 3})
    in_force = site.http.get(path, headers=site.agent).json()["assignment"]
    assert (in_force["mode"], in_force["source"]) == ("balanced", "settings"), in_force
    needs(site, method, path, site.agent, 200, json={"mode": None})


def teams(site: Site, method: str, path: str) -> None:
    """An admin puts alex (themself) in a team, sees it, and takes them out again."""
    needs(site, method, path.format(id="alex"), site.agent, 200, json={"teams": ["support"]})
    assert site.http.get("/api/team", headers=site.agent).json()["me"]["teams"] == ["support"]
    assert site.http.request(method, path.format(id="alex"), headers=site.agent,
                             json={"teams": "support"}).status_code == 400
    needs(site, method, path.format(id="alex"), site.agent, 200, json={"teams": []})


def resend(site: Site, path: str) -> None:
    cid, mid = site.failed_delivery()
    tried = len(site.twilio.requests)
    needs(site, "POST", path.format(id=cid, message=mid), site.agent, 202)
    until(lambda: len(site.twilio.requests) > tried, "the message went to Twilio again")


def resend_all(site: Site, path: str) -> None:
    cid, mid = site.failed_delivery()
    tried = len(site.twilio.requests)
    refused = site.http.post(path.format(id=cid), json={"messages": ["not-an-id"]}, headers=site.agent)
    assert refused.status_code == 400 and "not an event id" in refused.json()["error"]
    needs(site, "POST", path.format(id=cid), site.agent, 202, json={"messages": [mid]})
    until(lambda: len(site.twilio.requests) > tried, "the message went to Twilio again")


def reopen(site: Site, method: str, path: str) -> None:
    cid = site.conversation()
    assert site.http.post(f"/api/conversations/{cid}/close", headers=site.agent).status_code == 200
    needs(site, method, path.format(id=cid), site.agent, 200)
    assert site.detail(cid)["status"] == "open"


def labels(site: Site, method: str, path: str) -> None:
    """An admin defines a label, puts it on a conversation, takes it off and deletes it (each URL its own step)."""
    cid = site.conversation()
    site.http.put("/api/labels/urls", json={"color": "red"}, headers=site.agent)
    if method == "PUT":
        needs(site, method, "/api/labels/urls", site.agent, 200, json={"color": "red"})
    elif method == "POST":
        needs(site, method, path.format(id=cid), site.agent, 200, json={"label": "urls"})
    elif "/conversations/" in path:
        needs(site, method, path.format(id=cid, name="urls"), site.agent, 200)
    else:
        needs(site, method, "/api/labels/urls", site.agent, 200)


def canned(site: Site, method: str, path: str) -> None:
    site.http.put("/api/canned/urls", json={"text": "Thanks {{customer.name}}"}, headers=site.agent)
    if method == "PUT":
        needs(site, method, "/api/canned/urls", site.agent, 200, json={"text": "Thanks {{customer.name}}"})
    else:
        needs(site, method, "/api/canned/urls", site.agent, 200)


def snooze(site: Site, method: str, path: str) -> None:
    """An agent snoozes a conversation of theirs until the customer writes, then wakes it."""
    cid = site.conversation()
    site.http.post(f"/api/conversations/{cid}/assign", json={"assignee": "me"}, headers=site.agent)
    if path.endswith("/unsnooze"):
        site.http.post(f"/api/conversations/{cid}/snooze", json={}, headers=site.agent)
        needs(site, method, path.format(id=cid), site.agent, 200)
    else:
        needs(site, method, path.format(id=cid), site.agent, 200, json={})


def knowledge(site: Site, method: str, path: str) -> None:
    """An admin adds an article, reads, edits and deletes it, imports a file, tries the AI (each URL its own step)."""
    created = site.http.post("/api/knowledge", json={"title": "URLs", "body": "Every URL answers."}, headers=site.agent)
    assert created.status_code == 201, created.text
    article = f"/api/knowledge/{created.json()['article']['id']}"
    if path == "/api/knowledge/import":
        needs(site, method, path, site.agent, 201, json={"name": "urls.md", "content": "# URLs\nThey answer."})
    elif path == "/api/knowledge/try":  # the first try imports the model's library in the gateway: seconds
        first = site.http.post(path, json={"question": "Do URLs answer?"}, headers=site.agent, timeout=120)
        assert first.status_code == 200, first.text
        needs(site, method, path, site.agent, 200, json={"question": "Do URLs answer?"})
    elif path == "/api/knowledge":
        needs(site, method, path, site.agent, 201 if method == "POST" else 200,
              **({"json": {"title": "More", "body": "Text."}} if method == "POST" else {}))
    else:
        needs(site, method, article, site.agent, 200, **({"json": {"body": "Edited."}} if method == "PUT" else {}))


def metrics(site: Site) -> None:
    """From this machine (the test runs on it), the Prometheus text with Baton's metrics."""
    response = site.http.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    assert "baton_queue_depth" in response.text
    forwarded = site.http.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"})
    assert forwarded.status_code == 403  # what a proxy on this machine relays is not from this machine


def session(site: Site) -> None:
    assert site.visitor()["Authorization"].startswith("Bearer ")


Check = Callable[[Site, str, str], None]  # (site, method, path as advertised)
def rating(site: Site) -> None:
    """A visitor rates their conversation once an agent has closed it (before that: 409, nothing to rate)."""
    visitor = site.visitor()
    needs(site, "POST", "/webchat/webchat/rating", visitor, 409, json={"rating": 5})
    cid = site.say(visitor, "What are your opening hours?")
    closed = site.http.post(f"/api/conversations/{cid}/close", headers=site.agent, json={})
    assert closed.status_code == 200, closed.text
    needs(site, "POST", "/webchat/webchat/rating", visitor, 200, json={"rating": 5, "comment": "Quick and clear"})


CHECKS: dict[tuple[str, str], Check] = {
    ("GET", "/"): lambda site, method, path: page(site, path),
    ("GET", "/demo"): lambda site, method, path: page(site, path),
    ("GET", "/inbox"): lambda site, method, path: page(site, path),
    ("GET", "/openapi.json"): lambda site, method, path: openapi(site),
    ("GET", "/healthz"): lambda site, method, path: page(site, path, "application/json"),
    ("GET", "/readyz"): lambda site, method, path: ready(site),
    ("GET", "/metrics"): lambda site, method, path: metrics(site),
    ("POST", "/webhooks/{channel}"): lambda site, method, path: whatsapp_webhook(site),
    ("GET", "/webchat/{channel}/config"): lambda site, method, path: page(site, "/webchat/webchat/config",
                                                                         "application/json"),
    ("POST", "/webchat/{channel}/sessions"): lambda site, method, path: session(site),
    ("POST", "/webchat/{channel}/messages"): lambda site, method, path: needs(
        site, method, "/webchat/webchat/messages", site.visitor(), 201, json={"text": "Hello", "client_id": "m1"}),
    ("GET", "/webchat/{channel}/messages"): lambda site, method, path: needs(
        site, method, "/webchat/webchat/messages", site.visitor(), 200),
    ("POST", "/webchat/{channel}/contact"): lambda site, method, path: needs(
        site, method, "/webchat/webchat/contact", site.awaiting_form(), 201,
        json={"name": "Maria", "email": "maria@example.com"}),
    ("POST", "/webchat/{channel}/rating"): lambda site, method, path: rating(site),
    ("GET", "/webchat/{channel}/events"): lambda site, method, path: stream(site, "/webchat/webchat/events",
                                                                           site.visitor()),
    ("GET", "/api/conversations"): lambda site, method, path: needs(site, method, path, site.agent, 200),
    ("GET", "/api/channels/{channel}/templates"): lambda site, method, path: needs(
        site, method, path.format(channel="whatsapp"), site.agent, 200),
    ("POST", "/api/channels/{channel}/templates"): lambda site, method, path: needs(
        site, method, path.format(channel="whatsapp"), site.agent, 200),
    ("GET", "/api/conversations/{id}"): lambda site, method, path: needs(
        site, method, path.format(id=site.conversation()), site.agent, 200),
    ("GET", "/api/conversations/{id}/messages"): lambda site, method, path: needs(
        site, method, path.format(id=site.conversation()), site.agent, 200),
    ("POST", "/api/conversations/{id}/assign"): lambda site, method, path: needs(
        site, method, path.format(id=site.conversation()), site.agent, 200, json={"assignee": "me"}),
    ("POST", "/api/conversations/{id}/unassign"): lambda site, method, path: needs(
        site, method, path.format(id=site.conversation()), site.agent, 200),
    ("POST", "/api/conversations/{id}/close"): lambda site, method, path: needs(
        site, method, path.format(id=site.conversation()), site.agent, 200),
    ("POST", "/api/conversations/{id}/messages"): lambda site, method, path: needs(
        site, method, path.format(id=site.conversation()), site.agent, 201, json={"text": "Alex here, hello!"}),
    ("POST", "/api/conversations/{id}/messages/{message}/resend"): lambda site, method, path: resend(site, path),
    ("POST", "/api/conversations/{id}/resend"): lambda site, method, path: resend_all(site, path),
    ("POST", "/api/conversations/{id}/notes"): lambda site, method, path: needs(
        site, method, path.format(id=site.conversation()), site.agent, 201, json={"text": "A note for @alex"}),
    ("POST", "/api/conversations/{id}/reopen"): reopen,
    # The README writes the query as "q=…" (no word: refused 400): searched with a word instead.
    ("GET", "/api/search"): lambda site, method, path: needs(site, method, "/api/search?q=hello", site.agent, 200),
    # The README writes the range as YYYY-MM-DD (not dates: refused 400): asked for a real week instead.
    ("GET", "/api/reports"): lambda site, method, path: needs(
        site, method, "/api/reports?from=2026-11-30&to=2026-12-06", site.agent, 200),
    ("POST", "/api/conversations/{id}/snooze"): snooze,
    ("POST", "/api/conversations/{id}/unsnooze"): snooze,
    ("GET", "/api/labels"): lambda site, method, path: needs(site, method, path, site.agent, 200),
    ("PUT", "/api/labels/{name}"): labels,
    ("DELETE", "/api/labels/{name}"): labels,
    ("POST", "/api/conversations/{id}/labels"): labels,
    ("DELETE", "/api/conversations/{id}/labels/{name}"): labels,
    ("GET", "/api/canned"): lambda site, method, path: needs(site, method, path, site.agent, 200),
    ("PUT", "/api/canned/{shortcut}"): canned,
    ("DELETE", "/api/canned/{shortcut}"): canned,
    ("GET", "/api/contacts"): lambda site, method, path: needs(site, method, path, site.agent, 200),
    ("PATCH", "/api/contacts/{id}"): lambda site, method, path: needs(
        site, method, path.format(id=site.detail(site.conversation())["contact"]["id"]), site.agent, 200,
        json={"name": "Edited Name"}),
    ("GET", "/api/contacts/{id}"): lambda site, method, path: needs(
        site, method, path.format(id=site.detail(site.conversation())["contact"]["id"]), site.agent, 200),
    ("GET", "/api/team"): lambda site, method, path: needs(site, method, path, site.agent, 200),
    # No channel here names media by id (WhatsApp Cloud's are served in tests/test_whatsapp_cloud.py).
    ("GET", "/api/media/{channel}/{media}"): lambda site, method, path: needs(
        site, method, "/api/media/webchat/1", site.agent, 404),
    ("PUT", "/api/me/presence"): lambda site, method, path: presence(site, method, path),
    ("GET", "/api/assignment"): lambda site, method, path: needs(site, method, path, site.agent, 200),
    ("PUT", "/api/assignment"): lambda site, method, path: assignment(site, method, path),
    ("PUT", "/api/agents/{id}/teams"): lambda site, method, path: teams(site, method, path),
    ("GET", "/api/knowledge"): knowledge,
    ("POST", "/api/knowledge"): knowledge,
    ("POST", "/api/knowledge/import"): knowledge,
    ("POST", "/api/knowledge/try"): knowledge,
    ("GET", "/api/knowledge/{id}"): knowledge,
    ("PUT", "/api/knowledge/{id}"): knowledge,
    ("DELETE", "/api/knowledge/{id}"): knowledge,
    ("GET", "/api/ai-agent"): lambda site, method, path: needs(site, method, path, site.agent, 200),
    ("PATCH", "/api/ai-agent"): lambda site, method, path: publish(site, method, path),
    ("GET", "/api/events"): lambda site, method, path: stream(site, path, site.agent),
    ("GET", "/inbox/session"): lambda site, method, path: inbox_session(site),
    ("POST", "/inbox/session"): lambda site, method, path: inbox_session(site),
    ("POST", "/inbox/session/delete"): lambda site, method, path: sign_out(site),
}


def check(site: Site, method: str, url: str) -> None:
    """Request an advertised URL (method and path, with its query) as its user would."""
    path = urlsplit(url).path or "/"
    for (known_method, template), answers in CHECKS.items():
        if known_method == method and re.fullmatch(re.sub(r"\{\w+\}", "[^/]+", template), path):
            answers(site, method, url.removeprefix(site.url) if url.startswith("http") else url)
            return
    raise AssertionError(f"{method} {url} is advertised, but no check here says what it should answer")


# --- where URLs are advertised -----------------------------------------------------------------------------------

def readme_urls() -> list[tuple[str, str]]:
    """(method, path) of every URL of this server the README names, query alternatives (`a\\|b`) spelled out."""
    found = [("GET", m) for m in re.findall(r"http://127\.0\.0\.1:8000(/[^\s<>)`]*)?", README)]
    found += [("POST", m) for m in re.findall(r"https://support\.example\.com(/webhooks/[^\s<>)`]*)", README)]
    found += re.findall(r"`(GET|POST|PATCH|PUT|DELETE) (/[^\s`]+)`", README)
    found += [("GET", m) for m in re.findall(r"`(/[a-z][^\s`]*)` documents", README)]
    return sorted({(method, spelled) for method, path in found for spelled in alternatives(path or "/")})


def alternatives(path: str) -> list[str]:
    base, _, query = path.partition("?")
    if not query:
        return [base]
    choices = [[(name, value) for value in values.split("\\|")] for name, values in parse_qsl(query)]
    return [f"{base}?{urlencode(pairs)}" for pairs in itertools.product(*choices)]


def banner_urls(banner: str) -> list[str]:
    return re.findall(r"(?:https?|redis)://[^\s,]+", banner)


# --- the tests ---------------------------------------------------------------------------------------------------

def test_every_url_the_readme_names_answers(site: Site) -> None:
    urls = readme_urls()
    assert len(urls) >= 20, urls
    assert ("GET", "/openapi.json") in urls and ("POST", "/webhooks/whatsapp") in urls
    for method, path in urls:
        check(site, method, path)


def test_every_url_of_the_serve_banner_answers(site: Site) -> None:
    urls = banner_urls(site.banner)
    paths = {urlsplit(url).path for url in urls if url.startswith("http")}
    assert {"/inbox", "/openapi.json", "/healthz", "/readyz", "/demo", "/webhooks/whatsapp"} <= paths, site.banner
    for url in urls:
        if url.startswith("redis://"):
            # the embedded Valkey's password is redacted; the banner names the file that holds it
            password_file = re.search(r"\(password in ([^)]+)\)", site.banner)
            assert ":***@" in url and password_file, site.banner
            password = Path(password_file[1]).read_text().strip()
            with redis.Redis.from_url(url.replace(":***@", ":@"), password=password) as client:
                assert client.ping()
        elif urlsplit(url).path.startswith("/webhooks/"):
            check(site, "POST", url)  # Twilio's: it POSTs there
        else:
            check(site, "GET", url)


def test_every_operation_of_the_openapi_document_answers(site: Site) -> None:
    document = site.http.get("/openapi.json").json()
    operations = [(method.upper(), path) for path, methods in document["paths"].items() for method in methods]
    assert len(operations) >= 25, operations
    for method, path in operations:
        check(site, method, path)


def test_the_readme_and_the_document_agree_on_the_agent_api(site: Site) -> None:
    documented = {(m.upper(), p) for p, ms in site.http.get("/openapi.json").json()["paths"].items() for m in ms}
    named = {(method, path.partition("?")[0]) for method, path in readme_urls() if path.startswith("/api/")}
    assert named <= documented, named - documented


def test_a_browser_on_the_webhook_url_learns_it_takes_posts(site: Site) -> None:
    response = site.http.get("/webhooks/whatsapp")
    assert response.status_code == 405 and response.headers["allow"] == "POST"
    assert "POST only" in json.loads(response.text)["error"], response.text


def test_the_readme_puts_no_token_in_a_url() -> None:
    """Tokens go in the Authorization header only (a URL ends up in logs): the server refuses ?token=."""
    assert "token=" not in README
