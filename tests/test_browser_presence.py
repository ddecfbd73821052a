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


def handed_over(server: Server, client_id: str) -> tuple[str, str]:
    """A customer of opal asks for a person: (their token, the conversation)."""
    token = httpx.post(f"{server.url}/webchat/opal-chat/sessions").json()["token"]
    sent = server.api(token, "POST", "/webchat/opal-chat/messages", json={"text": "transfer to agent",
                                                                         "client_id": client_id})
    return token, str(sent["conversation"])


def owner_of(server: Server, token: str, cid: str) -> str:
    return str(server.api(token, "GET", f"/api/conversations/{cid}")["conversation"]["owner"])


def test_an_admin_taking_over_a_colleagues_chat_is_asked_first(server: Server, pia: str,
                                                               new_page: Callable[..., Any]) -> None:
    tess = server.agent("opal", "tess", "Tess Lund")
    _, cid = handed_over(server, "takeover-1")
    deadline = time.monotonic() + 30
    while owner_of(server, pia, cid) != "none":  # the AI's turn hands it over
        assert time.monotonic() < deadline
        time.sleep(0.2)
    server.api(tess, "POST", f"/api/conversations/{cid}/assign", json={"assignee": "me"})
    colleague = inbox_page(new_page, tess)
    admin = inbox_page(new_page, pia)
    admin.go(f"#/inbox/all/{cid}")
    take = admin.action("Take over")
    dialog = admin.page.locator("#takeover-dialog")

    take.click()
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Tess Lund has this chat")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    assert owner_of(server, pia, cid) == "agent:tess"  # nothing happened
    take.click()
    admin.page.keyboard.press("Escape")  # Escape says no too
    expect(dialog).to_be_hidden()
    assert owner_of(server, pia, cid) == "agent:tess"

    take.click()
    dialog.get_by_role("button", name="Take over").click()
    expect(admin.page.locator("#conv-owner")).to_contain_text("Pia Novak", timeout=10_000)
    expect(take).to_be_hidden()
    assert owner_of(server, pia, cid) == "agent:pia"
    expect(colleague.page.locator("#toasts")).to_contain_text("took over")


def test_the_response_target_counts_down_then_shows_the_chat_overdue(server: Server, pia: str,
                                                                      new_page: Callable[..., Any]) -> None:
    customer, cid = handed_over(server, "sla-1")
    admin = inbox_page(new_page, pia)
    admin.go("#/inbox/all")
    chip = admin.conversation_row(cid).locator(".chip-sla")
    expect(chip).to_contain_text("Reply in 59m", timeout=30_000)  # first_response: an hour
    server.api(pia, "POST", f"/api/conversations/{cid}/messages", json={"text": "Hi, I'm Pia."})
    expect(chip).to_have_count(0)  # answered: no target runs
    server.api(customer, "POST", "/webchat/opal-chat/messages", json={"text": "Is the lamp in stock?",
                                                                      "client_id": "sla-2"})
    expect(chip).to_contain_text("Reply in")  # next_response: 2 s
    expect(chip).to_contain_text("Overdue", timeout=15_000)
    expect(chip).to_have_class("chip chip-sla is-late")
    expect(admin.count("overdue")).to_have_text("1")
    admin.go("#/inbox/overdue")
    expect(admin.conversation_row(cid)).to_be_visible()
    expect(admin.page.locator("#toasts")).to_contain_text("waits past the target")
    server.api(pia, "POST", f"/api/conversations/{cid}/messages", json={"text": "Yes, it is."})
    expect(admin.count("overdue")).to_have_text("0")


def test_an_admin_puts_an_agent_in_a_team_from_settings(server: Server, pia: str,
                                                        new_page: Callable[..., Any]) -> None:
    server.agent("opal", "uma", "Uma Reyes")
    admin = inbox_page(new_page, pia)
    admin.go("#/settings")
    field = admin.page.get_by_label("Teams of Uma Reyes")
    expect(field).to_have_value("")
    field.fill("Lamps, returns")
    field.press("Enter")
    expect(field).to_have_value("lamps, returns")
    team = {a["id"]: a for a in server.api(pia, "GET", "/api/team")["agents"]}
    assert team["uma"]["teams"] == ["lamps", "returns"]
    field.fill("")
    field.press("Enter")  # none
    deadline = time.monotonic() + 10
    while {a["id"]: a for a in server.api(pia, "GET", "/api/team")["agents"]}["uma"].get("teams"):
        assert time.monotonic() < deadline
        time.sleep(0.2)
