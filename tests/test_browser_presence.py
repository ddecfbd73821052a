"""Presence and automatic assignment in the team inbox, in headless Chromium against a real `baton serve`: an agent
switches their status and a teammate sees it change without a reload; with automatic assignment set in Settings,
a handover lands in the online agent's My Inbox with a notice that it is theirs. The harness is test_browser.py's;
these scenarios use the "opal" workspace, where no other browser test signs anyone in."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests import test_browser
from tests.test_browser import Server, expect, inbox_page

pytestmark = pytest.mark.browser
browser, server, new_page = test_browser.browser, test_browser.server, test_browser.new_page  # the harness's


@pytest.fixture(scope="module")
def pia(server: Server) -> str:
    """An admin of opal."""
    return server.agent("opal", "pia", "Pia Novak", admin=True)


@pytest.fixture
def automatic(server: Server, pia: str) -> Iterator[None]:
    yield
    server.api(pia, "PUT", "/api/assignment", json={"mode": None})  # back to config.yaml's (manual)


def team_presence(server: Server, token: str) -> dict[str, str]:
    return {a["id"]: a["presence"] for a in server.api(token, "GET", "/api/team")["agents"]}


def test_an_agent_switches_to_away_and_a_teammate_sees_it_live(server: Server, pia: str,
                                                                new_page: Callable[..., Any]) -> None:
    ola = server.agent("opal", "ola", "Ola Berg")
    mine = inbox_page(new_page, ola)
    expect(mine.page.locator("#presence")).to_have_value("online")  # opening the inbox brought Ola online
    admin = inbox_page(new_page, pia)
    admin.go("#/settings")
    chip = admin.page.locator('#team-list [data-agent="ola"] .presence-chip')
    expect(chip).to_have_text("Online")

    mine.page.get_by_label("Your status").select_option("away")
    expect(chip).to_have_text("Away")
    expect(chip).to_have_attribute("data-presence", "away")
    assert team_presence(server, pia)["ola"] == "away"
    mine.page.reload()  # a reload keeps what Ola chose
    expect(mine.page.locator("#presence")).to_have_value("away")
    mine.page.get_by_label("Your status").select_option("offline")
    expect(chip).to_have_text("Offline")


def test_a_handover_is_assigned_automatically_to_the_online_agent_and_lands_in_their_inbox(
        server: Server, pia: str, automatic: None, new_page: Callable[..., Any]) -> None:
    kim = server.agent("opal", "kim", "Kim Sato")
    admin = inbox_page(new_page, pia)
    admin.page.get_by_label("Your status").select_option("offline")  # Pia is not taking chats
    admin.go("#/settings")
    admin.page.locator("#assignment-mode").select_option("round_robin")
    admin.page.locator("#assignment-capacity").fill("2")
    admin.page.locator("#assignment-save").click()
    expect(admin.page.locator("#assignment-state")).to_contain_text("round robin, capacity 2, set here")

    inbox = inbox_page(new_page, kim)
    inbox.go("#/inbox/mine")
    expect(inbox.page.locator("#presence")).to_have_value("online")
    deadline = time.monotonic() + 90  # agents of earlier tests stay online for the grace period after they left
    while [a for a, status in team_presence(server, pia).items() if status == "online"] != ["kim"]:
        assert time.monotonic() < deadline, team_presence(server, pia)
        time.sleep(0.5)

    token = httpx.post(f"{server.url}/webchat/opal-chat/sessions").json()["token"]
    sent = server.api(token, "POST", "/webchat/opal-chat/messages", json={"text": "transfer to agent",
                                                                         "client_id": "c1"})
    cid = str(sent["conversation"])
    expect(inbox.conversation_row(cid)).to_be_visible()
    expect(inbox.conversation_row(cid)).to_contain_text("Kim Sato (you)")
    expect(inbox.page.locator("#toasts")).to_contain_text("is yours now")
    expect(inbox.page.locator("#toasts")).to_contain_text("Assigned to you automatically")
    expect(inbox.count("mine")).to_have_text("1")
