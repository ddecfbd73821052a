"""WhatsApp's 24-hour window in the team inbox, in headless Chromium against a real `baton serve` (test_browser.py's
harness, whose "support" channel is WhatsApp through a fake Twilio with one template): the countdown in the header,
and outside the window the composer's free text closed and the template picker in its place, whose template reaches
the provider. A window that has closed is shown to the page by rewriting the server's answer (the server's own
refusal of free text outside it is tested in test_window.py)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests import test_browser
from tests.test_browser import FOLLOW_UP_SID, Inbox, Server, expect
from tests.test_browser_inbox import whatsapp_conversation

pytestmark = pytest.mark.browser
browser, server, new_page = test_browser.browser, test_browser.server, test_browser.new_page  # the harness's


@pytest.fixture(scope="module")
def robin(server: Server) -> str:
    return server.agent("shop", "robin", "Robin Hale", admin=True)


def test_the_window_counts_down_in_the_header(server: Server, robin: str, new_page: Callable[..., Any]) -> None:
    cid = whatsapp_conversation(server, robin, "+34612345001", "Lucia", "Is my lamp shipped?")
    inbox = Inbox(new_page(viewport={"width": 1440, "height": 900}), robin)
    inbox.go(f"#/inbox/all/{cid}")
    chip = inbox.page.locator("#conv-window")
    expect(chip).to_have_text(re.compile(r"^Window closes in (23 h( \d+ min)?|24 h)$"))
    expect(chip).to_have_class(re.compile("chip-window"))
    expect(inbox.page.locator("#composer-text")).to_be_enabled()
    expect(inbox.page.locator("#composer-templates")).to_be_hidden()


def test_outside_the_window_the_composer_offers_the_templates(server: Server, robin: str,
                                                              new_page: Callable[..., Any]) -> None:
    cid = whatsapp_conversation(server, robin, "+34612345002", "Pablo", "Where is my order?")
    server.api(robin, "POST", f"/api/conversations/{cid}/assign", json={"assignee": "me"})
    sent: list[Any] = []

    def closed_window(route: Any) -> None:
        """The server's answer, 25 hours later."""
        response = route.fetch()
        body = response.json()
        body["conversation"]["window_closes_at"] = int((time.time() - 3600) * 1000)
        route.fulfill(response=response, json=body)

    def record(route: Any) -> None:
        sent.append(route.request.post_data_json)
        route.continue_()

    page = new_page(viewport={"width": 1440, "height": 900})
    page.route(f"**/api/conversations/{cid}", closed_window)
    page.route(f"**/api/conversations/{cid}/messages", record)
    inbox = Inbox(page, robin)
    inbox.go(f"#/inbox/all/{cid}")
    expect(page.locator("#conv-window")).to_have_text("24-hour window closed")
    expect(page.locator("#composer-text")).to_be_disabled()
    picker = page.locator("#composer-templates")
    expect(picker).to_be_visible()
    expect(picker.get_by_label("Template")).to_have_value("follow_up")
    expect(page.locator("#template-preview")).to_have_text("Hi [name], we have news about your [order].")

    picker.get_by_label("name").fill("Pablo")
    page.locator("#composer-send").click()  # "order" is still empty: nothing is sent
    expect(page.locator("#composer-hint")).to_contain_text("Fill in “order”")
    assert sent == []
    picker.get_by_label("order").fill("arc lamp")
    expect(page.locator("#template-preview")).to_have_text("Hi Pablo, we have news about your arc lamp.")
    page.locator("#composer-send").click()
    agent = inbox.timeline().locator(".msg-agent")
    expect(agent.last).to_contain_text("Hi Pablo, we have news about your arc lamp.")
    assert [(s["template"], s["params"]) for s in sent] == [("follow_up", ["Pablo", "arc lamp"])]
    assert sent[0]["client_id"]
    deadline = time.monotonic() + 10
    assert server.twilio is not None
    while not any(form.get("ContentSid") == [FOLLOW_UP_SID] for form, _ in server.twilio.created):
        assert time.monotonic() < deadline, server.twilio.created
        time.sleep(0.1)


@pytest.mark.slow
def test_an_admin_refreshes_the_whatsapp_templates_from_settings(server: Server, robin: str,
                                                                  new_page: Callable[..., Any]) -> None:
    """The support channel's templates as Twilio's Content API (the fake) lists them, in Settings; a template added
    there shows after the admin's refresh, not before (it is cached)."""
    assert server.twilio is not None
    server.twilio.contents = [
        {"sid": FOLLOW_UP_SID, "friendly_name": "follow_up_v2", "language": "en",
         "types": {"twilio/text": {"body": "Hi {{1}}, we have news about your {{2}}."}}},
        {"sid": "HX" + "d4" * 16, "friendly_name": "order_shipped", "language": "en",
         "types": {"twilio/text": {"body": "Your order {{1}} has shipped."}}}]
    server.api(robin, "POST", "/api/channels/support/templates")  # whatever an earlier test left cached
    server.twilio.contents.append({"sid": "HX" + "e5" * 16, "friendly_name": "holiday_hours", "language": "en",
                                   "types": {"twilio/text": {"body": "We are closed on {{1}}."}}})
    inbox = Inbox(new_page(viewport={"width": 1440, "height": 900}), robin)
    inbox.go("#/settings")
    row = inbox.page.locator('#templates-list [data-channel="support"]')
    state = row.locator(".templates-state")
    expect(state).to_have_text("2 templates: follow_up, order_shipped")  # from the cache
    row.get_by_role("button", name="Refresh from provider").click()
    expect(state).to_have_text("3 templates: follow_up, order_shipped, holiday_hours")
    expect(inbox.page.locator('#templates-list [data-channel="chat"]')).to_have_count(0)  # a webchat has none
