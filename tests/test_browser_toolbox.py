"""The agent's toolbox in headless Chromium against a real `baton serve`: every conversation reachable (the inbox pages
to the 150th and beyond).

A server of its own (test_browser.py's harness, its pages and screenshots), with a workspace `desk` that holds more
conversations than a page, so that the other browser modules' counts are not disturbed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import yaml

from tests.conftest import Served, free_port
from tests.test_browser import Inbox, Server, expect, inbox_page, shot
from tests.test_browser import browser as browser  # noqa: PLC0414 - the harness's fixtures, used by name
from tests.test_browser import new_page as new_page  # noqa: PLC0414

pytestmark = pytest.mark.browser
CONVERSATIONS = 160
NO_LIMITS = {"ip_sessions": {"count": 100_000, "seconds": 60}, "ip_messages": {"count": 100_000, "seconds": 60},
             "agent_requests": {"count": 100_000, "seconds": 60}}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("toolbox")
    (root / "baton.yaml").write_text(yaml.safe_dump({"limits": NO_LIMITS, "workspaces": [
        # No AI agent: nothing answers the customers while the test pages, so the order stays as they wrote.
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
    more.click()
    expect(rows).to_have_count(100)
    # Scrolling to the end of the list loads the next page by itself (infinite scroll).
    expect(more).not_to_be_in_viewport()  # the next page waits until the end of the list comes into view
    inbox.page.evaluate("document.getElementById('load-more').scrollIntoView()")  # the agent scrolls down
    expect(rows).to_have_count(150)
    more.click()
    expect(rows).to_have_count(CONVERSATIONS)
    expect(more).to_have_count(0)  # the last page: nothing more to load
    ids = rows.evaluate_all("rows => rows.map(row => row.dataset.conversation)")
    assert sorted(ids) == sorted(customers) and len(set(ids)) == CONVERSATIONS
    the_150th = rows.nth(149)
    assert the_150th.get_attribute("data-conversation") == customers[CONVERSATIONS - 150]  # latest first
    asked = CONVERSATIONS - 150
    the_150th.click()
    expect(inbox.timeline()).to_contain_text(f"Question number {asked}")
    expect(the_150th).to_have_attribute("aria-current", "true")
    the_150th.scroll_into_view_if_needed()
    shot(inbox.page, "inbox-paging.png")
