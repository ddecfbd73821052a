"""The team inbox and the webchat widget end to end in headless Chromium, against a real `baton serve`.

One server (embedded Valkey, gateway, worker) for every browser test module, with three workspaces: `shop`
(a long no-human timeout, for the handover loop; a webchat named like WhatsApp and a WhatsApp channel named
"support", through a fake Twilio), `help` (a short timeout, for the contact-form fallback) and `opal` (a
channel with its own title and greeting). Every test opens fresh browser contexts: one per visitor, one
per signed-in agent. The harness here (the server, pages in fresh contexts, a visitor, an agent, a
breakable network) serves test_browser_widget.py and test_browser_inbox.py too.

Set BATON_SCREENSHOTS=1 to write the README's screenshots to docs/screenshots/.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.conftest import KNOWLEDGE, Served, baton, free_port
from tests.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")
Browser, BrowserContext, Page, expect = sync_api.Browser, sync_api.BrowserContext, sync_api.Page, sync_api.expect

pytestmark = pytest.mark.browser

SCREENSHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
XSS = "<img src=x onerror=alert(1)>"
# Console errors a test causes on purpose: the sign-in check before signing in, a session ended or a rate limit
# (answered so on purpose), a network made to fail.
EXPECTED = re.compile(r"status of 401|status of 429|net::ERR_(INTERNET_DISCONNECTED|CONNECTION_RESET|"
                      r"CONNECTION_REFUSED|INCOMPLETE_CHUNKED_ENCODING|EMPTY_RESPONSE)")
TIMEOUT = 15_000  # ms, for every expectation and action: generous, for a machine busy with other work
expect.set_options(timeout=TIMEOUT)

# Counts what the inbox does to get an agent's attention: desktop notifications and Web Audio chimes.
SPY = """
window.__notifications = [];
window.__chimes = 0;
if (window.Notification) {
  const Real = window.Notification;
  window.Notification = class extends Real {
    constructor(title, options) { super(title, options); window.__notifications.push(title); }
    static get permission() { return Real.permission; }
    static requestPermission() { return Real.requestPermission(); }
  };
}
const createOscillator = AudioContext.prototype.createOscillator;
AudioContext.prototype.createOscillator = function () { window.__chimes += 1; return createOscillator.call(this); };
"""


class Server:
    def __init__(self, served: Served, root: Path) -> None:
        self.served = served
        self.url = served.url
        self.root = root
        self.tokens: dict[str, str] = {}
        self.twilio: FakeTwilio | None = None  # the fake Twilio behind the "support" channel

    def agent(self, workspace: str, agent_id: str, name: str, admin: bool = False) -> str:
        """The token of a new agent, minted by `baton agent create` beside the running server."""
        args = ["agent", "create", agent_id, "--name", name, "--config", str(self.root / "baton.yaml"),
                "--workspace", workspace]
        created = baton(*args, *(["--admin"] if admin else []), cwd=self.root)
        assert created.returncode == 0, created.stderr
        return str(created.stdout.strip().splitlines()[-1])

    def api(self, token: str, method: str, path: str, **kwargs: Any) -> Any:
        response = httpx.request(method, f"{self.url}{path}", headers={"Authorization": f"Bearer {token}"},
                                 timeout=10, **kwargs)
        assert response.is_success, response.text
        return response.json()


def ai_agent(name: str = "Lumi") -> dict[str, Any]:
    return {"name": name, "model": "baton/knowledge", "knowledge": {"entries": KNOWLEDGE}}


@contextlib.contextmanager
def serving(root: Path, workspaces: list[dict[str, Any]]) -> Iterator[Server]:
    """`baton serve` with these workspaces, stopped cleanly (exit code 0) at the end."""
    (root / "baton.yaml").write_text(yaml.safe_dump({"workspaces": workspaces}))
    served = Served(root / "baton.yaml", free_port(), log=root / "serve.log")
    try:
        yield Server(served, root)
    finally:
        code, output = served.stop()
        assert code == 0, output[-4000:]


WHATSAPP_FROM = "whatsapp:+14155550199"
FOLLOW_UP_SID = "HX" + "f0" * 16  # the support channel's WhatsApp template (test_browser_window.py)
OPAL_TITLE = "Opal Help Desk"
OPAL_GREETING = "Welcome to Opal! Ask us anything about our lamps."
SHARED: list[Server] = []  # the one running server, see `server`


def workspaces(twilio: FakeTwilio) -> list[dict[str, Any]]:
    return [
        {"id": "shop", "name": "Lumen Lamps", "ai_agent": ai_agent(), "handover": {"no_human_timeout": 120},
         "channels": [
             {"name": "chat", "type": "webchat", "title": "Lumen Lamps"},
             {"name": "whatsapp-web", "type": "webchat"},  # a webchat, whatever its name says
             {"name": "support", "type": "twilio_whatsapp", "account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN,
              "from": WHATSAPP_FROM, "api_base_url": twilio.base_url, "templates": {"follow_up": {
                  "content_sid": FOLLOW_UP_SID, "body": "Hi {{1}}, we have news about your {{2}}.",
                  "params": ["name", "order"]}}},
         ]},
        {"id": "help", "channels": [{"name": "help", "type": "webchat"}],
         "ai_agent": ai_agent(), "handover": {"no_human_timeout": 1.5}},
        {"id": "opal", "name": "Opal Lighting", "ai_agent": ai_agent("Opal"), "handover": {"no_human_timeout": 120},
         # Response targets for test_browser_presence's countdown (only told when missed: nothing moves).
         "sla": {"first_response": 3600, "next_response": 2, "on_breach": "notify"},
         "channels": [{"name": "opal-chat", "type": "webchat", "title": OPAL_TITLE, "greeting": OPAL_GREETING}]},
    ]


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for the session: a server's first AI turn waits some seconds for its worker, and every
    browser module would pay that again. pytest keeps a fixture per module that names it, so the first
    module's copy starts the server and the later ones find it in SHARED."""
    if SHARED:
        yield SHARED[0]
        return
    with FakeTwilio() as twilio, serving(tmp_path_factory.mktemp("browser"), workspaces(twilio)) as server:
        server.twilio = twilio
        SHARED.append(server)
        try:
            warm_up(server)
            yield server
        finally:
            SHARED.clear()


def warm_up(server: Server) -> None:
    """Wait for the worker's first answer: it comes up after the gateway answers /healthz, and a test's
    expectation should not pay for that."""
    token = httpx.post(f"{server.url}/webchat/opal-chat/sessions").json()["token"]
    server.api(token, "POST", "/webchat/opal-chat/messages", json={"text": "Hello?", "client_id": "warm-up"})
    deadline = time.monotonic() + 90
    while not any(m["author"] == "ai" for m in server.api(token, "GET", "/webchat/opal-chat/messages")["messages"]):
        assert time.monotonic() < deadline, "the worker never answered"
        time.sleep(0.1)


@pytest.fixture(scope="module")
def shop_admin(server: Server) -> str:
    return server.agent("shop", "alex", "Alex Rivera", admin=True)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM))
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def new_page(browser: Any, server: Server) -> Iterator[Callable[..., Any]]:
    """Pages in fresh contexts; each one fails the test on a page error or a JavaScript dialog."""
    contexts: list[Any] = []
    problems: list[str] = []

    def make(**options: Any) -> Any:
        context = browser.new_context(**{"base_url": server.url, **options})
        context.set_default_timeout(TIMEOUT)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
        page.on("dialog", lambda dialog: (problems.append(f"dialog: {dialog.message}"), dialog.dismiss()))
        page.on("console", lambda m: m.type == "error" and not EXPECTED.search(m.text) and problems.append(m.text))
        return page

    yield make
    for context in contexts:
        context.close()
    assert problems == []


def shot(page: Any, name: str, **options: Any) -> None:
    if os.environ.get("BATON_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / name), animations="disabled", **options)


class Proxy:
    """A TCP proxy in front of the server: cut() drops every connection as a network failure would, and
    hold() keeps new ones waiting (connected, unanswered) until release()."""

    def __init__(self, target: str) -> None:
        host, port = target.rsplit("//", 1)[1].split(":")
        self.target = (host, int(port))
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.open = threading.Event()
        self.open.set()
        self.lock = threading.Lock()
        self.sockets: list[socket.socket] = []
        self.threads = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self.open.wait()
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                thread = threading.Thread(target=self._pump, args=(source, sink), daemon=True)
                thread.start()
                self.threads.append(thread)

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def hold(self) -> None:
        self.open.clear()

    def release(self) -> None:
        self.open.set()

    def cut(self) -> None:
        with self.lock:
            for sock in self.sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> Proxy:
        return self

    def __exit__(self, *exc_info: object) -> None:
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() under way
        self.listener.close()
        self.release()
        self.cut()
        for thread in self.threads:
            thread.join(timeout=2)
        with self.lock:
            for sock in self.sockets:
                sock.close()


# --- the two sides ----------------------------------------------------------------------------

class Widget:
    """A visitor on the demo page with the widget, or on `url`, a page embedding it from `origin`."""

    def __init__(self, page: Any, channel: str = "chat", url: str = "", origin: str = "") -> None:
        self.page = page
        self.channel = channel
        self.origin = origin  # Baton's, when the page is another site's
        page.goto(url or f"/demo?channel={channel}")
        self.launcher = page.locator(".bw-launcher")
        self.input = page.locator("#bw-input")
        self.log = page.locator(".bw-log")

    def open(self) -> Widget:
        self.launcher.click()
        expect(self.input).to_be_focused()
        return self

    def say(self, text: str) -> None:
        self.input.fill(text)
        self.input.press("Enter")
        expect(self.page.locator(".bw-from-me .bw-bubble").filter(has_text=text).last).to_be_visible()

    def expect_reply(self, text: str, author: str = "ai") -> None:
        expect(self.page.locator(f".bw-from-{author} .bw-bubble").filter(has_text=text).last).to_be_visible()

    def expect_notice(self, text: str) -> None:
        expect(self.log.locator(".bw-notice, .bw-msg").filter(has_text=text).last).to_be_visible()

    @property
    def storage_key(self) -> str:
        origin = self.origin or self.page.evaluate("location.origin")
        return f"baton.webchat.{self.channel}@{origin}.session"

    def token(self) -> str:
        session = self.page.evaluate("key => localStorage.getItem(key)", self.storage_key)
        return str(json.loads(session)["token"])

    def history(self, server: Server) -> dict[str, Any]:
        return server.api(self.token(), "GET", f"/webchat/{self.channel}/messages")  # type: ignore[no-any-return]


class Inbox:
    """A human agent signed in to the team inbox through its sign-in form."""

    def __init__(self, page: Any, token: str) -> None:
        self.page = page
        page.add_init_script(SPY)
        page.goto("/inbox")
        page.get_by_label("Agent token").fill(token)
        page.get_by_role("button", name="Sign in").click()
        expect(page.locator("#app")).to_be_visible()
        expect(page.locator("#live-status")).to_have_attribute("data-state", "live")

    def count(self, view: str) -> Any:
        return self.page.locator(f"[data-count={view}]")

    def go(self, hash_: str) -> None:
        self.page.evaluate(f"location.hash = {hash_!r}")

    def row(self, text: str) -> Any:
        return self.page.locator("#conversation-list a.row").filter(has_text=text)

    def conversation_row(self, cid: str) -> Any:
        return self.page.locator(f'#conversation-list a[data-conversation="{cid}"]')

    def timeline(self) -> Any:
        return self.page.locator("#timeline")

    def action(self, label: str) -> Any:
        return self.page.locator(".actions").get_by_role("button", name=label)


def inbox_page(new_page: Callable[..., Any], token: str) -> Inbox:
    page = new_page(viewport={"width": 1440, "height": 900}, permissions=["notifications"])
    return Inbox(page, token)


# --- the scenarios ------------------------------------------------------------------------------

def test_handover_loop_from_widget_to_inbox_and_back(server: Server, shop_admin: str,
                                                     new_page: Callable[..., Any]) -> None:
    inbox = inbox_page(new_page, shop_admin)
    waiting_before = int(inbox.count("waiting").inner_text())

    widget = Widget(new_page(viewport={"width": 1280, "height": 800})).open()
    widget.say("How long does shipping take?")
    widget.expect_reply("Delivery takes 2-4 business days.")
    widget.say("talk to a human")
    widget.expect_reply("connecting you with a member of our team")

    # Every signed-in agent is told at once: a toast, the waiting count and the title, a sound, a notification.
    toast = inbox.page.locator(".toast").filter(has_text="needs a human")
    expect(toast).to_be_visible()
    expect(inbox.count("waiting")).to_have_text(str(waiting_before + 1))
    expect(inbox.page).to_have_title(re.compile(rf"^\({waiting_before + 1}\) Waiting"))
    assert inbox.page.evaluate("window.__chimes") > 0
    assert any("needs a human" in n for n in inbox.page.evaluate("window.__notifications"))

    toast.get_by_role("button", name="Open").click()
    expect(inbox.page).to_have_url(re.compile(r"#/inbox/waiting/\d+$"))
    cid = inbox.page.url.rsplit("/", 1)[1]
    timeline = inbox.timeline()
    expect(timeline.locator(".msg-customer").filter(has_text="How long does shipping take?")).to_be_visible()
    expect(timeline.locator(".msg-ai").filter(has_text="Delivery takes 2-4 business days.")).to_be_visible()
    handover = timeline.locator(".card-handover")
    expect(handover).to_contain_text("The customer asked for a human")
    expect(handover).to_contain_text("Summary")
    # Only what is possible: nobody owns it, so it can be taken, handed back or closed, but not unassigned.
    expect(inbox.action("Assign to me")).to_be_enabled()
    expect(inbox.action("Unassign")).to_be_hidden()

    inbox.action("Assign to me").click()
    expect(inbox.page.locator("#conv-owner")).to_have_text("Alex Rivera (you)")
    expect(inbox.action("Assign to me")).to_be_hidden()
    expect(inbox.count("mine")).not_to_have_text("0")
    inbox.go(f"#/inbox/mine/{cid}")  # it is in My Inbox now
    expect(inbox.conversation_row(cid)).to_contain_text("Alex Rivera (you)")
    widget.expect_notice("Alex Rivera joined the conversation")

    inbox.page.locator("#composer-text").fill("Hi, I'm Alex. Which lamp is it about?")
    inbox.page.locator("#composer-text").press("Enter")
    expect(timeline.locator(".msg-agent").filter(has_text="Which lamp is it about?")).to_be_visible()
    widget.expect_reply("Hi, I'm Alex. Which lamp is it about?", author="agent")
    widget.say("The arc floor lamp, it flickers.")
    expect(timeline.locator(".msg-customer").filter(has_text="it flickers")).to_be_visible()
    expect(inbox.conversation_row(cid).locator(".row-preview")).to_have_text("The arc floor lamp, it flickers.")
    shot(inbox.page, "inbox.png")
    shot(widget.page, "widget.png")

    inbox.action("Hand back to AI").click()
    expect(inbox.page.locator("#conv-owner")).to_contain_text("Lumi (AI)")
    widget.expect_notice("chatting with Lumi again")
    widget.say("What are your opening hours?")
    widget.expect_reply("We are open Monday to Friday, 9:00 to 17:00.")
    expect(timeline.locator(".msg-ai").filter(has_text="Monday to Friday")).to_be_visible()

    inbox.action("Close").click()
    expect(inbox.page.locator("#conv-status")).to_have_text("Closed")
    expect(inbox.page.locator("#composer-text")).to_be_disabled()
    expect(inbox.action("Close")).to_be_hidden()
    expect(widget.page.locator(".bw-closed")).to_be_visible()

    widget.say("How do I return a lamp?")
    widget.expect_reply("Start a return from the order page within 30 days.")
    expect(widget.page.locator(".bw-new")).to_have_text("New conversation")
    fresh = widget.history(server)["conversation"]
    assert fresh["id"] != cid and fresh["status"] == "open"
    inbox.go("#/inbox/ai")
    expect(inbox.conversation_row(fresh["id"])).to_contain_text("Start a return")
    inbox.go("#/inbox/closed")
    expect(inbox.conversation_row(cid)).to_contain_text("Closed")


def test_no_human_in_time_sends_the_contact_form(server: Server, new_page: Callable[..., Any]) -> None:
    token = server.agent("help", "robin", "Robin")
    inbox = inbox_page(new_page, token)
    widget = Widget(new_page(viewport={"width": 1280, "height": 800}), channel="help").open()
    widget.say("I want to speak to someone")
    widget.expect_reply("connecting you with a member of our team")

    form = widget.page.locator(".bw-form")
    expect(form).to_be_visible()  # after the 1.5 s timeout, fired by the worker's timer loop
    posts: list[str] = []
    widget.page.on("request", lambda r: r.method == "POST" and r.url.endswith("/contact") and posts.append(r.url))
    form.get_by_label("Email").fill("not-an-email")
    form.get_by_role("button", name="Send my details").click()
    expect(form.get_by_label("Email")).to_have_attribute("aria-invalid", "true")
    expect(form.get_by_label("Email")).to_be_focused()
    expect(form.locator(".bw-field-error").filter(has_text="you@example.com")).to_be_visible()
    assert posts == []  # rejected in the browser

    form.get_by_label("Name").fill("Dana Scully")
    form.get_by_label("Email").fill("dana@example.com")
    expect(form.get_by_label("Email")).not_to_have_attribute("aria-invalid", "true")
    expect(form.locator(".bw-form-status")).to_be_empty()
    form.get_by_label("Phone").fill("+44 20 7946 0958")
    form.get_by_label("Message").fill("Please call me about the opal lamp.")
    expect(form.get_by_label("Email")).to_have_value("dana@example.com")
    form.evaluate("form => form.scrollIntoView({block: 'start'})")
    shot(widget.page, "widget-contact-form.png")
    form.get_by_role("button", name="Send my details").click()
    expect(widget.page.locator(".bw-form-done")).to_contain_text("Thanks, we have your details.")
    assert len(posts) == 1

    toast = inbox.page.locator(".toast").filter(has_text="Dana Scully left their contact details")
    expect(toast).to_be_visible()
    toast.get_by_role("button", name="Open").click()
    captured = inbox.timeline().locator(".card-contact")
    expect(captured).to_contain_text("dana@example.com")
    expect(captured).to_contain_text("Please call me about the opal lamp.")
    expect(inbox.timeline().locator(".card-form")).to_be_visible()
    expect(inbox.page.locator("#details")).to_contain_text("+442079460958")
    inbox.go("#/contacts")
    row = inbox.page.locator("#contacts-body tr").filter(has_text="Dana Scully")
    expect(row).to_contain_text("dana@example.com")


@pytest.mark.slow
def test_a_late_history_answer_does_not_undo_a_handover(server: Server, new_page: Callable[..., Any]) -> None:
    """The conversation's history, asked for before the handover and answered after its live event and the contact
    form, says what was true when it was asked: the header and the form stay as the newer live events left them."""
    widget = Widget(new_page(viewport={"width": 1280, "height": 800}), channel="help").open()
    header = widget.page.locator(".bw-sub")
    widget.say("What are your opening hours?")
    widget.expect_reply("Monday to Friday")
    expect(header).to_have_text("We reply in seconds. Ask for a person any time.")

    held: list[tuple[Any, Any]] = []  # (route, the answer the server gave when it was asked)

    def hold_history(route: Any) -> None:
        if route.request.method != "GET" or held:
            route.continue_()
            return
        held.append((route, route.fetch()))

    widget.page.route("**/webchat/help/messages*", hold_history)
    widget.page.reload()  # the stream opens again and the history is asked for: its answer is held back
    deadline = time.monotonic() + 15
    while not held and time.monotonic() < deadline:
        widget.page.wait_for_timeout(50)
    assert held, "the widget asked for its history"
    assert held[0][1].json()["conversation"]["with"] == "ai"

    widget.say("I want to speak to someone")
    widget.expect_reply("connecting you with a member of our team")
    form = widget.page.locator(".bw-form")
    expect(form).to_be_visible()  # the no-human timeout (1.5 s) sent the contact form, live
    expect(header).to_have_text("A member of our team will reply here as soon as they can.")

    route, stale = held[0]
    with widget.page.expect_response(lambda r: r.request.method == "GET" and "/webchat/help/messages" in r.url):
        route.fulfill(response=stale)
    widget.page.wait_for_timeout(500)  # the answer is read and applied (before the fix: the AI's header, no form)
    widget.expect_reply("Monday to Friday")  # its messages are merged
    expect(header).to_have_text("A member of our team will reply here as soon as they can.")
    expect(widget.page.locator(".bw-form-retired")).to_have_count(0)
    expect(form.get_by_role("button", name="Send my details")).to_be_visible()


def test_unpublishing_the_ai_from_settings(server: Server, shop_admin: str, new_page: Callable[..., Any]) -> None:
    inbox = inbox_page(new_page, shop_admin)
    inbox.go("#/settings")
    toggle = inbox.page.get_by_role("switch")
    expect(toggle).to_have_attribute("aria-checked", "true")
    toggle.click()
    try:
        expect(toggle).to_have_attribute("aria-checked", "false")
        expect(inbox.page.locator("#ai-banner")).to_be_visible()
        expect(inbox.page.locator("#ai-status")).to_contain_text("Unpublished")
        expect(inbox.count("ai")).to_have_text("0")  # what the AI held waits for a human now
        shot(inbox.page, "settings.png")
        waiting = int(inbox.count("waiting").inner_text())

        widget = Widget(new_page()).open()
        header = widget.page.locator(".bw-sub")
        expect(header).to_have_text("Our team replies here as soon as they can.")  # not "We reply in seconds"
        widget.say("How long does shipping take?")
        expect(header).to_have_text("A member of our team will reply here as soon as they can.")
        expect(inbox.count("waiting")).to_have_text(str(waiting + 1))
        inbox.go("#/inbox/waiting")
        inbox.row("How long does shipping take?").click()
        expect(inbox.action("Hand back to AI")).to_be_disabled()
        time.sleep(1)  # the worker had its chance to answer: it must not
        expect(widget.page.locator(".bw-from-ai")).to_have_count(0)
    except BaseException:
        server.api(shop_admin, "PATCH", "/api/ai-agent", json={"published": True})  # for the next tests
        raise
    inbox.go("#/settings")
    toggle.click()
    expect(toggle).to_have_attribute("aria-checked", "true")
    expect(inbox.page.locator("#ai-banner")).to_be_hidden()
    # Published again: the customer nobody answered is the AI's again, hears so, and gets the answer.
    widget.expect_notice("You're chatting with Lumi again.")
    widget.expect_reply("Delivery takes 2-4 business days.")
    expect(header).to_have_text("We reply in seconds. Ask for a person any time.")


def test_markup_from_a_visitor_stays_text(server: Server, shop_admin: str, new_page: Callable[..., Any]) -> None:
    widget = Widget(new_page()).open()
    widget.say(XSS)
    expect(widget.page.locator(".bw-from-me .bw-bubble").last).to_have_text(XSS)
    assert widget.page.locator(".bw-log img").count() == 0

    cid = widget.history(server)["conversation"]["id"]
    inbox = inbox_page(new_page, shop_admin)
    inbox.go("#/inbox/all")
    inbox.conversation_row(cid).click()
    expect(inbox.timeline().locator(".msg-customer .bubble").filter(has_text=XSS)).to_have_text(XSS)
    assert inbox.page.locator("#timeline img, #conversation-list img").count() == 0
    inbox.page.locator("#composer-text").fill(f"You wrote {XSS}")
    inbox.page.locator("#composer-text").press("Enter")
    widget.expect_reply(f"You wrote {XSS}", author="agent")
    assert widget.page.locator(".bw-log img").count() == 0
    # new_page fails the test on any dialog: the onerror handlers never ran


def test_the_session_survives_a_reload(new_page: Callable[..., Any]) -> None:
    widget = Widget(new_page()).open()
    widget.say("What are your opening hours?")
    widget.expect_reply("Monday to Friday")
    token = widget.token()
    widget.page.reload()
    expect(widget.input).to_be_visible()  # it was open: it stays open
    widget.expect_reply("Monday to Friday")
    expect(widget.page.locator(".bw-from-me .bw-bubble")).to_have_text(["What are your opening hours?"])
    assert widget.token() == token
    widget.say("How long does shipping take?")
    widget.expect_reply("Delivery takes 2-4 business days.")


def test_a_send_that_fails_is_retried_and_recorded_once(server: Server, new_page: Callable[..., Any]) -> None:
    widget = Widget(new_page()).open()
    attempts: list[str] = []

    def flaky_network(route: Any) -> None:
        if route.request.method != "POST":
            route.continue_()
            return
        attempts.append(route.request.post_data_json["client_id"])
        if len(attempts) == 1:
            route.abort("internetdisconnected")  # never reached the server
        elif len(attempts) == 3:
            route.fetch()  # reached the server, but the answer is lost on the way back
            route.abort("connectionreset")
        else:
            route.continue_()

    widget.page.route("**/webchat/chat/messages", flaky_network)
    widget.input.fill("How long does shipping take?")
    widget.input.press("Enter")
    expect(widget.page.locator(".bw-pending .bw-status")).to_have_text("Sending…")
    widget.expect_reply("Delivery takes 2-4 business days.")
    assert len(attempts) == 2 and attempts[0] == attempts[1]  # the retry carried the same client_id

    widget.input.fill("What are your opening hours?")
    widget.input.press("Enter")
    widget.expect_reply("Monday to Friday")
    time.sleep(1.2)  # past the first retry delay
    assert len(set(attempts[2:])) == 1
    expect(widget.page.locator(".bw-pending, .bw-failed")).to_have_count(0)
    expect(widget.page.locator(".bw-from-me")).to_have_count(2)
    texts = [m.get("text") for m in widget.history(server)["messages"] if m["author"] == "customer"]
    assert texts == ["How long does shipping take?", "What are your opening hours?"]


def test_the_inbox_catches_up_after_a_dropped_connection(server: Server, shop_admin: str,
                                                         new_page: Callable[..., Any]) -> None:
    with Proxy(server.url) as proxy:
        inbox = Inbox(new_page(base_url=proxy.url, viewport={"width": 1440, "height": 900}), shop_admin)
        inbox.go("#/inbox/waiting")
        waiting = int(inbox.count("waiting").inner_text())
        proxy.hold()
        proxy.cut()  # the network drops before the page has seen a single event
        expect(inbox.page.locator("#live-status")).to_have_attribute("data-state", "reconnecting")

        # Meanwhile a customer asks for a person.
        token = httpx.post(f"{server.url}/webchat/chat/sessions").json()["token"]
        server.api(token, "POST", "/webchat/chat/messages", json={"text": "operator please", "client_id": "a1"})
        deadline = time.monotonic() + 10
        while len(history := server.api(token, "GET", "/webchat/chat/messages")["messages"]) < 2:
            assert time.monotonic() < deadline, history
            time.sleep(0.05)
        cid = server.api(token, "GET", "/webchat/chat/messages")["conversation"]["id"]

        proxy.release()  # the browser reconnects with Last-Event-ID: the handover is not lost
        expect(inbox.page.locator("#live-status")).to_have_attribute("data-state", "live")
        toast = inbox.page.locator(".toast").filter(has_text="needs a human")
        expect(toast).to_have_count(1)
        expect(inbox.count("waiting")).to_have_text(str(waiting + 1))
        inbox.conversation_row(cid).click()
        expect(inbox.timeline().locator(".msg-customer .bubble")).to_have_text(["operator please"])
        server.api(token, "POST", "/webchat/chat/messages", json={"text": "still there?", "client_id": "a2"})
        expect(inbox.timeline().locator(".msg-customer .bubble")).to_have_text(["operator please", "still there?"])
        ids = inbox.timeline().locator("[data-id]").evaluate_all("items => items.map((item) => item.dataset.id)")
        assert len(ids) == len(set(ids))  # nothing shown twice
        expect(toast).to_have_count(1)
        inbox.page.context.close()


def test_sign_out(shop_admin: str, new_page: Callable[..., Any]) -> None:
    inbox = inbox_page(new_page, shop_admin)
    inbox.page.get_by_role("button", name="Sign out").click()
    expect(inbox.page.locator("#signin")).to_be_visible()
    expect(inbox.page.locator("#signin-error")).to_have_text("You have signed out.")
    inbox.page.reload()
    expect(inbox.page.locator("#signin")).to_be_visible()
    expect(inbox.page.locator("#app")).to_be_hidden()
    assert inbox.page.context.cookies() == []
    inbox.page.get_by_label("Agent token").fill("baton_shop_not-a-token")
    inbox.page.get_by_role("button", name="Sign in").click()
    expect(inbox.page.locator("#signin-error")).to_contain_text("unknown or has been revoked")


def test_the_widget_works_with_the_keyboard_alone(new_page: Callable[..., Any]) -> None:
    page = new_page()
    widget = Widget(page)
    expect(widget.launcher).to_be_visible()  # the widget loads asynchronously: wait for it before tabbing
    for _ in range(10):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement && document.activeElement.id") == "baton-webchat":
            break
    expect(widget.launcher).to_be_focused()
    assert widget.launcher.evaluate("el => getComputedStyle(el).boxShadow") != "none"  # visible focus
    page.keyboard.press("Enter")
    expect(widget.input).to_be_focused()
    page.keyboard.type("How long does shipping take?")
    page.keyboard.press("Enter")
    widget.expect_reply("Delivery takes 2-4 business days.")
    page.keyboard.press("Escape")
    expect(page.locator(".bw-panel")).to_be_hidden()
    expect(widget.launcher).to_be_focused()
    expect(widget.launcher).to_have_attribute("aria-label", "Open chat")


def test_the_widget_on_a_narrow_phone(new_page: Callable[..., Any]) -> None:
    page = new_page(viewport={"width": 375, "height": 667}, is_mobile=True, has_touch=True)
    widget = Widget(page)
    widget.launcher.tap()
    panel = page.locator(".bw-panel").bounding_box()
    assert panel is not None and panel["x"] >= 0 and panel["width"] <= 375 and panel["height"] <= 667
    send = page.get_by_role("button", name="Send message").bounding_box()
    assert send is not None and send["x"] + send["width"] <= 375 and send["y"] + send["height"] <= 667
    widget.input.fill("What are your opening hours?")
    page.get_by_role("button", name="Send message").tap()
    widget.expect_reply("Monday to Friday")
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
