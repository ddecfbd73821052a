"""The agent's toolbox in headless Chromium against a real `baton serve`: every conversation reachable (the inbox pages
to the 150th and beyond).

A server of its own (test_browser.py's harness, its pages and screenshots), with a workspace `desk` that holds more
conversations than a page, so that the other browser modules' counts are not disturbed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import yaml

from tests.conftest import Served, free_port
from tests.test_browser import Inbox, Server, Widget, expect, inbox_page, shot
from tests.test_browser import browser as browser  # noqa: PLC0414 - the harness's fixtures, used by name
from tests.test_browser import new_page as new_page  # noqa: PLC0414

pytestmark = pytest.mark.browser
CONVERSATIONS = 160
NO_LIMITS = {"ip_sessions": {"count": 100_000, "seconds": 60}, "ip_messages": {"count": 100_000, "seconds": 60},
             "agent_requests": {"count": 100_000, "seconds": 60},
             "visitor_messages": {"count": 100_000, "seconds": 60}}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("toolbox")
    (root / "baton.yaml").write_text(yaml.safe_dump({"limits": NO_LIMITS, "workspaces": [
        # No AI agent configured (the default one may still answer: the paging test allows for rows moving up).
        {"id": "desk", "name": "Help Desk", "handover": {"no_human_timeout": 3600},
         "channels": [{"name": "chat", "type": "webchat", "title": "Help Desk"}]}]}))
    served = Served(root / "baton.yaml", free_port(), log=root / "serve.log")
    try:
        yield Server(served, root)
    finally:
        code, output = served.stop()
        assert code == 0, output[-4000:]


@pytest.fixture(scope="module")
def admin(server: Server) -> str:
    return server.agent("desk", "alex", "Alex Rivera", admin=True)


@pytest.fixture(scope="module")
def customers(server: Server) -> list[str]:
    """CONVERSATIONS visitors who wrote once each, oldest first: (conversation id)."""
    made = []
    with httpx.Client(base_url=server.url, timeout=10) as http:
        for n in range(CONVERSATIONS):
            token = http.post("/webchat/chat/sessions").json()["token"]
            sent = http.post("/webchat/chat/messages", json={"text": f"Question number {n}", "client_id": "c1"},
                             headers={"Authorization": f"Bearer {token}"})
            assert sent.status_code == 201, sent.text
            made.append(str(sent.json()["conversation"]))
    return made


def test_the_inbox_pages_to_the_150th_conversation_and_beyond(server: Server, admin: str, customers: list[str],
                                                              new_page: Callable[..., Any]) -> None:
    inbox: Inbox = inbox_page(new_page, admin)
    inbox.go("#/inbox/all")
    rows = inbox.page.locator("#conversation-list a.row")
    expect(inbox.page.locator("#list-count")).to_have_text(f"{CONVERSATIONS} conversations")
    expect(rows).to_have_count(50)
    more = inbox.page.locator("#load-more")
    expect(more).to_have_text(f"Load more ({CONVERSATIONS - 50} more)")
    # The button's own click, without scrolling it into view: a real click scrolls first, so infinite scroll could
    # load page 2 before the click lands, and Playwright, finding the button replaced, clicks the next one (page 3).
    more.dispatch_event("click")
    expect(rows).to_have_count(100)
    # Scrolling to the end of the list loads the next page by itself (infinite scroll).
    expect(more).not_to_be_in_viewport()  # the next page waits until the end of the list comes into view
    inbox.page.evaluate("document.getElementById('load-more').scrollIntoView()")  # the agent scrolls down
    expect(rows).to_have_count(150)
    for _ in range(5):  # the end of the list in view until nothing more loads (a list refreshed meanwhile may
        # have pushed a row or two back past the cursor: they come with the next page)
        inbox.page.evaluate("document.getElementById('load-more')?.scrollIntoView()")
        inbox.page.wait_for_timeout(500)
        if not more.count():
            break
    expect(more).to_have_count(0)  # the last page: nothing more to load
    # A row the AI answered while the agent paged moves above the cursor; the live refresh brings it in.
    expect(rows).to_have_count(CONVERSATIONS)
    ids = rows.evaluate_all("rows => rows.map(row => row.dataset.conversation)")
    assert sorted(ids) == sorted(customers) and len(set(ids)) == CONVERSATIONS
    the_150th = rows.nth(149)
    asked = customers.index(the_150th.get_attribute("data-conversation"))
    the_150th.click()
    expect(inbox.timeline()).to_contain_text(f"Question number {asked}")
    expect(the_150th).to_have_attribute("aria-current", "true")
    inbox.page.evaluate("document.querySelector('#conversation-list a.row[aria-current]').scrollIntoView()")
    shot(inbox.page, "inbox-paging.png")


def conversation_of(server: Server, widget: Widget) -> str:
    """The widget's visitor's conversation, once the server has their message."""
    for _ in range(100):
        stored = widget.page.evaluate("key => localStorage.getItem(key)", widget.storage_key)
        found = stored and widget.history(server)["conversation"]  # the widget keeps its session once it has one
        if found:
            return str(found["id"])
        widget.page.wait_for_timeout(100)
    raise AssertionError("the visitor's message never reached the server")


def test_a_private_note_never_reaches_the_widget(server: Server, admin: str, new_page: Callable[..., Any]) -> None:
    widget = Widget(new_page(viewport={"width": 1280, "height": 800})).open()
    widget.say("My lamp flickers since yesterday")
    cid = conversation_of(server, widget)
    sam = server.agent("desk", "sam", "Sam Lee")
    sam_inbox = inbox_page(new_page, sam)

    inbox = inbox_page(new_page, admin)
    inbox.go(f"#/inbox/all/{cid}")
    inbox.page.get_by_role("button", name="Private note").click()
    composer = inbox.page.locator("#composer-text")
    composer.fill("VIP customer: offer a replacement. @sam can you check stock?")
    composer.press("Enter")
    note = inbox.timeline().locator(".msg-note")
    expect(note).to_contain_text("offer a replacement")
    expect(note.locator(".tag-note")).to_have_text("Private note")
    expect(sam_inbox.page.locator(".toast").filter(has_text="Alex Rivera mentioned you")).to_be_visible()

    inbox.page.get_by_role("button", name="Reply", exact=True).click()
    composer.fill("Hello, Alex here: we will replace it.")
    composer.press("Enter")
    widget.expect_reply("we will replace it", author="agent")
    expect(widget.log).not_to_contain_text("replacement")
    expect(widget.log).not_to_contain_text("VIP")
    shot(inbox.page, "inbox-note.png")
    widget.page.reload()  # the history as the server serves it to the widget
    expect(widget.launcher).to_be_visible()
    widget.page.wait_for_timeout(1000)  # the widget restores its open state
    if not widget.input.is_visible():
        widget.open()
    widget.expect_reply("we will replace it", author="agent")
    expect(widget.log).not_to_contain_text("VIP")
    shot(widget.page, "widget-no-note.png")


def test_a_conversation_s_actions_wait_until_it_has_loaded(server: Server, admin: str,
                                                          new_page: Callable[..., Any]) -> None:
    """Clicking Close while the conversation was still loading once POSTed to /api/conversations/null/close (a 404,
    and the chat stayed open): the actions are hidden until the conversation they act on is on screen."""
    widget = Widget(new_page(viewport={"width": 1280, "height": 800})).open()
    widget.say("Is the shop open on Sunday?")
    cid = conversation_of(server, widget)
    inbox = inbox_page(new_page, admin)
    held: list[Any] = []
    inbox.page.route(f"**/api/conversations/{cid}", lambda route: held.append(route))
    inbox.go(f"#/inbox/all/{cid}")
    for _ in range(100):
        if held:
            break
        inbox.page.wait_for_timeout(50)
    assert held, "the inbox never asked for the conversation"
    expect(inbox.page.locator(".actions")).to_be_hidden()
    expect(inbox.page.locator("#composer-text")).to_be_disabled()  # Enter would do nothing, silently
    for route in held:
        route.continue_()
    inbox.page.unroute(f"**/api/conversations/{cid}")
    expect(inbox.action("Close")).to_be_visible()
    inbox.action("Close").click()
    expect(inbox.page.locator("#conv-status")).to_have_text("Closed")


def test_a_closed_conversation_is_reopened_and_written_to(server: Server, admin: str,
                                                          new_page: Callable[..., Any]) -> None:
    widget = Widget(new_page(viewport={"width": 1280, "height": 800})).open()
    widget.say("Thanks, that solved it")
    cid = conversation_of(server, widget)
    inbox = inbox_page(new_page, admin)
    inbox.go(f"#/inbox/all/{cid}")
    inbox.action("Close").click()
    expect(inbox.page.locator("#conv-status")).to_have_text("Closed")
    expect(inbox.page.locator("#composer-text")).to_be_disabled()
    inbox.action("Reopen").click()
    expect(inbox.page.locator("#conv-status")).to_have_text("Open")
    expect(inbox.page.locator("#conv-owner")).to_have_text("Alex Rivera (you)")
    expect(inbox.timeline()).to_contain_text("Conversation reopened by Alex Rivera (you)")
    composer = inbox.page.locator("#composer-text")
    composer.fill("One more thing: your warranty was extended.")
    composer.press("Enter")
    widget.expect_reply("warranty was extended", author="agent")
    widget.say("Great, thank you!")
    expect(inbox.timeline()).to_contain_text("Great, thank you!")  # the customer's next message comes here
    shot(inbox.page, "inbox-reopen.png")


def test_a_search_opens_the_conversation_at_the_matching_message(server: Server, admin: str, customers: list[str],
                                                                new_page: Callable[..., Any]) -> None:
    # A long history: the matching message is older than the newest page the conversation opens with.
    with httpx.Client(base_url=server.url, timeout=10) as http:
        token = http.post("/webchat/chat/sessions").json()["token"]
        said = [f"My order ZX-{n} has a problem" if n == 0 else f"Follow-up line {n}" for n in range(110)]
        for n, text in enumerate(said):
            sent = http.post("/webchat/chat/messages", json={"text": text, "client_id": f"s{n}"},
                             headers={"Authorization": f"Bearer {token}"})
            assert sent.status_code in (200, 201), sent.text
        cid = str(sent.json()["conversation"])
    inbox = inbox_page(new_page, admin)
    inbox.go("#/inbox/all")
    inbox.page.locator("#search-q").fill("order zx 0")
    rows = inbox.page.locator("#conversation-list a.row")
    expect(rows).to_have_count(1)
    expect(inbox.page.locator("#list-count")).to_have_text("1 result")
    expect(rows.first.locator(".row-match")).to_contain_text("My order ZX-0 has a problem")
    rows.first.click()
    match = inbox.timeline().locator(".msg.is-match")
    expect(match).to_contain_text("My order ZX-0 has a problem")
    expect(match).to_be_in_viewport()
    assert inbox.page.url.endswith(f"/{cid}/{rows.first.get_attribute('href').rsplit('/', 1)[1]}")
    shot(inbox.page, "inbox-search.png")
    # A word of one of the 160 questions finds exactly that one; emptying the box gives the view back.
    inbox.page.locator("#search-q").fill("number 42")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-conversation", customers[42])
    inbox.page.locator("#search-q").fill("")
    expect(inbox.page.locator("#list-title")).to_have_text("All")


def test_an_admin_defines_a_label_and_a_canned_reply_that_agents_then_use(
        server: Server, admin: str, new_page: Callable[..., Any]) -> None:
    widget = Widget(new_page(viewport={"width": 1280, "height": 800})).open()
    widget.say("Hello, my name is Jane and the blender is broken")
    cid = conversation_of(server, widget)
    inbox = inbox_page(new_page, admin)
    inbox.go("#/settings")
    inbox.page.locator("#label-name").fill("warranty")
    inbox.page.locator("#label-color").select_option("green")
    inbox.page.get_by_role("button", name="Add label").click()
    expect(inbox.page.locator("#labels-list")).to_contain_text("warranty")
    inbox.page.locator("#canned-shortcut").fill("thanks")
    inbox.page.locator("#canned-text").fill("Hi {{customer.first_name}}, {{agent.name}} here: we will sort it out.")
    inbox.page.get_by_role("button", name="Save reply").click()
    expect(inbox.page.locator("#canned-list")).to_contain_text("/thanks")

    inbox.go(f"#/inbox/all/{cid}")
    expect(inbox.timeline()).to_contain_text("the blender is broken")
    inbox.page.locator("#act-label").select_option("warranty")
    expect(inbox.page.locator("#conv-labels")).to_contain_text("warranty")
    composer = inbox.page.locator("#composer-text")
    composer.fill("")
    composer.type("/th")
    menu = inbox.page.locator("#canned-menu")
    expect(menu).to_be_visible()
    expect(menu.locator(".canned-item")).to_have_count(1)
    shot(inbox.page, "inbox-canned.png")
    composer.press("Enter")  # inserts the reply; it is not sent yet
    # No name given yet (a webchat visitor): "there", not "Visitor 3f2a1b".
    expect(composer).to_have_value("Hi there, Alex Rivera here: we will sort it out.")
    expect(menu).to_be_hidden()
    composer.press("Enter")
    widget.expect_reply("we will sort it out", author="agent")

    # The label's view in the sidebar lists the conversation; taking the label off empties it.
    inbox.page.locator("#nav-labels a", has_text="warranty").click()
    expect(inbox.page.locator("#list-title")).to_have_text("Label: warranty")
    rows = inbox.page.locator("#conversation-list a.row")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-conversation", cid)
    shot(inbox.page, "inbox-label.png")
    rows.first.click()
    inbox.page.get_by_role("button", name="Remove label warranty").click()
    expect(inbox.page.locator("#conv-labels")).not_to_contain_text("warranty")
    expect(rows).to_have_count(0)


def test_an_agent_edits_a_contact_and_finds_them_by_the_new_name(server: Server, admin: str,
                                                                 new_page: Callable[..., Any]) -> None:
    widget = Widget(new_page(viewport={"width": 1280, "height": 800})).open()
    widget.say("Is the shop open on Sunday?")
    cid = conversation_of(server, widget)
    inbox = inbox_page(new_page, admin)
    inbox.go(f"#/inbox/all/{cid}")
    contact = str(inbox.page.evaluate(f"fetch('/api/conversations/{cid}').then(r => r.json())")
                  ["conversation"]["contact"]["id"])
    inbox.go("#/contacts")
    row = inbox.page.locator(f"#contacts-body tr[data-contact='{contact}']")
    row.get_by_role("button", name=re.compile("^Edit")).click()
    row.get_by_label("Email").fill("not an email")
    row.get_by_role("button", name="Save").click()
    expect(row.locator(".field-error")).to_contain_text("email")
    row.get_by_label("Email").fill("")
    row.get_by_label("Name").fill("Priya Natarajan")
    row.get_by_role("button", name="Save").click()
    expect(row).to_contain_text("Priya Natarajan")
    shot(inbox.page, "inbox-contact-edit.png")
    inbox.go("#/inbox/all")
    inbox.page.locator("#search-q").fill("natara")
    rows = inbox.page.locator("#conversation-list a.row")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-conversation", cid)


def test_a_snoozed_conversation_comes_back_when_the_customer_writes(server: Server, admin: str,
                                                                   new_page: Callable[..., Any]) -> None:
    widget = Widget(new_page(viewport={"width": 1280, "height": 800})).open()
    widget.say("Can you check my delivery date?")
    cid = conversation_of(server, widget)
    inbox = inbox_page(new_page, admin)
    inbox.go(f"#/inbox/mine/{cid}")
    composer = inbox.page.locator("#composer-text")
    composer.fill("I'll ask the warehouse and get back to you.")
    composer.press("Enter")
    widget.expect_reply("ask the warehouse", author="agent")
    inbox.page.locator("#act-snooze").select_option("next")
    expect(inbox.page.locator("#act-unsnooze")).to_be_visible()
    inbox.go("#/inbox/snoozed")
    expect(inbox.page.locator(f"#conversation-list a.row[data-conversation='{cid}']")).to_have_count(1)
    shot(inbox.page, "inbox-snoozed.png")
    widget.say("Any news?")
    expect(inbox.page.locator(f"#conversation-list a.row[data-conversation='{cid}']")).to_have_count(0)
    inbox.go("#/inbox/mine")
    expect(inbox.page.locator(f"#conversation-list a.row[data-conversation='{cid}']")).to_have_count(1)
