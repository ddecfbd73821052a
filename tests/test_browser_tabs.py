"""Many tabs of one browser, in headless Chromium against a real `baton serve`: the inbox's and the widget's
tabs share one event stream (a leader tab relays it), so ten of either still work; when the leader closes
another takes over and misses nothing; and a stream that cannot open says so instead of "Connecting…".

Chromium opens at most six HTTP/1.1 connections to a host per browser profile (a Playwright context here),
and uvicorn speaks HTTP/1.1: before the streams were shared, the seventh tab could not even load. The harness
(server, agents, visitor) is test_browser.py's.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests import test_browser
from tests.test_browser import EXPECTED, TIMEOUT, Inbox, Server, Widget, expect
from tests.test_browser_widget import another_site

# Ten tabs load ten pages on a machine that may be busy with other work: a generous bound for the whole test.
pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]
browser, server = test_browser.browser, test_browser.server  # the harness's


@pytest.fixture(scope="module")
def shop_admin(server: Server) -> str:
    """An admin of its own: the server is the session's, and test_browser.py's admin (alex) exists already."""
    return server.agent("shop", "tabs-admin", "Tab Admin", admin=True)

TABS = 10
LOADING = 60_000  # ms for a tab to load: ten of them at once on a busy machine
QUESTIONS = [("What are your opening hours?", "Monday to Friday"),
             ("How long does shipping take?", "Delivery takes 2-4 business days."),
             ("How do I return a lamp?", "Start a return from the order page within 30 days.")]
# Web Locks missing (an http:// page that is not localhost, an old browser): the heartbeat fallback leads.
NO_WEB_LOCKS = "Object.defineProperty(Navigator.prototype, 'locks', { get: () => undefined });"
REFUSED = re.compile(r"status of 503")  # the tests that refuse the stream on purpose


class Profile:
    """One browser profile (a Playwright context): its tabs share cookies, storage and the host's six
    connections. Every event stream it opens is recorded, with the tab that opened it."""

    def __init__(self, context: Any, problems: list[str]) -> None:
        self.context = context
        self.problems = problems
        self.streams: list[tuple[Any, Any]] = []  # (page, request)
        context.on("request", lambda request: request.url.endswith("/events") and self.streams.append(
            (request.frame.page, request)))

    def tab(self) -> Any:
        page = self.context.new_page()
        page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        page.on("console", lambda m: m.type == "error" and not EXPECTED.search(m.text)
                and not REFUSED.search(m.text) and self.problems.append(m.text))
        return page

    def leader(self) -> Any:
        """The tab whose stream is open now (the one that opened the last stream)."""
        return self.streams[-1][0]


@pytest.fixture
def profile(browser: Any, server: Server) -> Iterator[Callable[..., Profile]]:
    contexts: list[Any] = []
    problems: list[str] = []

    def make(**options: Any) -> Profile:
        context = browser.new_context(**{"base_url": server.url, **options})
        context.set_default_timeout(TIMEOUT)
        context.set_default_navigation_timeout(LOADING)
        contexts.append(context)
        return Profile(context, problems)

    yield make
    for context in contexts:
        context.close()
    assert problems == []


class Tab(Inbox):
    """An inbox tab opened on `path`: signed in already (the profile's session cookie), or showing the form."""

    def __init__(self, page: Any, path: str = "/inbox#/inbox/all") -> None:
        self.page = page
        page.goto(path)

    def sign_in(self, token: str) -> Tab:
        self.page.get_by_label("Agent token").fill(token)
        self.page.get_by_role("button", name="Sign in").click()
        return self


def signed_in_tabs(profile: Profile, token: str, count: int) -> list[Inbox]:
    """`count` inbox tabs of one agent: the first signs in, the others open with its session cookie."""
    first = Inbox(profile.tab(), token)
    first.go("#/inbox/all")
    tabs = [first]
    tabs += [Tab(profile.tab()) for _ in range(count - 1)]
    for inbox in tabs:
        expect(inbox.page.locator("#app")).to_be_visible()
        expect(inbox.page.locator("#live-status")).to_have_attribute("data-state", "live")
        expect(inbox.page.locator("#list-count")).to_have_text(re.compile(r"^\d+ conversations?$"))
    return tabs


def new_conversation(server: Server, text: str) -> str:
    token = httpx.post(f"{server.url}/webchat/chat/sessions").json()["token"]
    sent = server.api(token, "POST", "/webchat/chat/messages", json={"text": text, "client_id": "t1"})
    return str(sent["conversation"])


def test_ten_inbox_tabs_show_the_list_and_live_updates(server: Server, shop_admin: str,
                                                       profile: Callable[..., Profile]) -> None:
    new_conversation(server, "Is the arc lamp dimmable?")  # the list has something to show
    browser_profile = profile(viewport={"width": 1280, "height": 800})
    tabs = signed_in_tabs(browser_profile, shop_admin, TABS)
    for inbox in tabs:  # the count is the list's: never "5 conversations" above an empty list
        expect(inbox.page.locator("#conversation-list a.row").first).to_be_visible()

    cid = new_conversation(server, "Do you ship to Norway?")
    for inbox in tabs:  # each tab hears of it live
        expect(inbox.conversation_row(cid)).to_be_visible()
    assert len(browser_profile.streams) == 1  # one stream for the ten tabs


def test_ten_shop_tabs_with_the_widget_all_answer(server: Server, profile: Callable[..., Profile]) -> None:
    browser_profile = profile()
    with another_site(server.url) as shop:  # the shop's pages on its own origin, the widget from Baton's
        widgets: list[Widget] = []
        for number in range(TABS):
            widget = Widget(browser_profile.tab(), channel="opal-chat", url=shop, origin=server.url).open()
            widgets.append(widget)
            question, answer = QUESTIONS[number % len(QUESTIONS)]
            widget.say(question)
            widget.expect_reply(answer)
            expect(widget.page.locator(".bw-pending, .bw-failed")).to_have_count(0)
            expect(widget.page.locator(".bw-from-ai")).to_have_count(number + 1)
        for widget in widgets:  # every tab shows the whole conversation, the answers to the others' questions too
            expect(widget.page.locator(".bw-from-me")).to_have_count(TABS)
            expect(widget.page.locator(".bw-from-ai")).to_have_count(TABS)
            expect(widget.page.locator(".bw-connection")).to_be_hidden()
    assert len({id(page) for page, _ in browser_profile.streams}) == 1  # one tab read the stream for all


@pytest.mark.parametrize("election", ["web-locks", "heartbeat"])
def test_closing_the_leader_tab_hands_the_stream_over_and_nothing_is_lost(
        server: Server, shop_admin: str, profile: Callable[..., Profile], election: str) -> None:
    browser_profile = profile(viewport={"width": 1280, "height": 800})
    if election == "heartbeat":
        browser_profile.context.add_init_script(NO_WEB_LOCKS)
    tabs = signed_in_tabs(browser_profile, shop_admin, 3)
    assert len(browser_profile.streams) == 1
    leader = browser_profile.leader()

    # The next stream waits, so that what happens between the two streams must come from the catch-up.
    held: list[Any] = []
    browser_profile.context.route("**/api/events", lambda route: held.append(route))
    closed = time.monotonic()
    leader.close()
    others = [inbox for inbox in tabs if inbox.page is not leader]
    while not held:
        others[0].page.wait_for_timeout(50)
        assert time.monotonic() - closed < 10, "no tab took the stream over"
    took_over = time.monotonic() - closed
    resumed_from = held[0].request.headers.get("last-event-id", "")
    assert resumed_from, held[0].request.headers  # it resumes where the old leader left off

    cid = new_conversation(server, "Anyone there while the tabs change hands?")
    held[0].continue_()
    browser_profile.context.unroute("**/api/events")
    for inbox in others:
        expect(inbox.page.locator("#live-status")).to_have_attribute("data-state", "live")
        expect(inbox.conversation_row(cid)).to_be_visible()
    cid = new_conversation(server, "And after the hand-over?")
    for inbox in others:
        expect(inbox.conversation_row(cid)).to_be_visible()
    # Web Locks hand the stream to one tab; heartbeats may let two take over at once, and one then steps down.
    assert len(browser_profile.streams) == 2 if election == "web-locks" else len(browser_profile.streams) >= 2
    assert took_over < 5, took_over  # a second or two (generous: the machine is shared)


def test_an_inbox_stream_that_cannot_open_says_so_and_retries(server: Server, shop_admin: str,
                                                              profile: Callable[..., Profile]) -> None:
    browser_profile = profile(viewport={"width": 1280, "height": 800})
    browser_profile.context.route("**/api/events", lambda route: route.fulfill(status=503, body="down"))
    inbox = Tab(browser_profile.tab(), "/inbox").sign_in(shop_admin)
    status = inbox.page.locator("#live-status")
    expect(status).to_have_attribute("data-state", "error")
    expect(status).to_contain_text(re.compile(r"No live updates: the server answered 503; retrying in \d+ s"))
    expect(inbox.page.locator("#list-count")).to_have_text(re.compile(r"^\d+ conversations?$"))  # the rest works

    browser_profile.context.unroute("**/api/events")
    expect(status).to_have_attribute("data-state", "live")


def test_an_inbox_stream_that_never_answers_is_not_connecting_for_ever(
        server: Server, shop_admin: str, profile: Callable[..., Profile]) -> None:
    browser_profile = profile(viewport={"width": 1280, "height": 800})
    held: list[Any] = []
    browser_profile.context.route("**/api/events", lambda route: held.append(route))  # no answer at all
    inbox = Tab(browser_profile.tab(), "/inbox").sign_in(shop_admin)
    status = inbox.page.locator("#live-status")
    expect(status).to_have_attribute("data-state", "connecting")
    expect(status).to_have_attribute("data-state", "error")
    expect(status).to_contain_text("No live updates: the server has not answered yet; still trying")
    for route in held:
        route.continue_()
    browser_profile.context.unroute("**/api/events")
    expect(status).to_have_attribute("data-state", "live")


def test_a_widget_stream_that_cannot_open_says_so_and_messages_still_go(
        server: Server, profile: Callable[..., Profile]) -> None:
    browser_profile = profile()
    browser_profile.context.route("**/webchat/opal-chat/events", lambda route: route.fulfill(status=503, body="down"))
    widget = Widget(browser_profile.tab(), channel="opal-chat").open()
    widget.say("How long does shipping take?")
    expect(widget.page.locator(".bw-pending, .bw-failed")).to_have_count(0)  # sent, without the stream
    connection = widget.page.locator(".bw-connection")
    expect(connection).to_contain_text(re.compile(r"Can't receive replies live right now\. Retrying in \d+ s\."))
    widget.expect_reply("Delivery takes 2-4 business days.")  # read with the history meanwhile

    browser_profile.context.unroute("**/webchat/opal-chat/events")
    expect(connection).to_be_hidden()
    widget.say("How do I return a lamp?")
    widget.expect_reply("Start a return from the order page within 30 days.")


def test_closing_the_leader_shop_tab_hands_the_widget_stream_over(server: Server,
                                                                   profile: Callable[..., Profile]) -> None:
    browser_profile = profile()
    with another_site(server.url) as shop:
        first = Widget(browser_profile.tab(), channel="opal-chat", url=shop, origin=server.url).open()
        first.say("How long does shipping take?")  # the visitor's session, which the later tabs share
        first.expect_reply("Delivery takes 2-4 business days.")
        widgets = [first] + [Widget(browser_profile.tab(), channel="opal-chat", url=shop, origin=server.url).open()
                             for _ in range(2)]
        for widget in widgets:
            expect(widget.page.locator(".bw-from-ai")).to_have_count(1)
        assert len(browser_profile.streams) == 1
        leader = browser_profile.leader()

        held: list[Any] = []
        browser_profile.context.route("**/webchat/opal-chat/events", lambda route: held.append(route))
        leader.close()
        others = [widget for widget in widgets if widget.page is not leader]
        deadline = time.monotonic() + 10
        while not held:
            others[0].page.wait_for_timeout(50)
            assert time.monotonic() < deadline, "no tab took the stream over"
        assert re.fullmatch(r"\d+/\d+(-\d+)?", held[0].request.headers.get("last-event-id", ""))
        held[0].continue_()
        browser_profile.context.unroute("**/webchat/opal-chat/events")

        sender, watcher = others
        sender.say("How do I return a lamp?")
        sender.expect_reply("Start a return from the order page within 30 days.")
        watcher.expect_reply("Start a return from the order page within 30 days.")  # relayed by the new leader
        expect(watcher.page.locator(".bw-from-me")).to_have_count(2)
    assert len(browser_profile.streams) == 2
