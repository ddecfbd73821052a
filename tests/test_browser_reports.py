"""The customer's verdict and the team's figures in headless Chromium against a real `baton serve`: the widget asks
for a rating when a conversation closes, and the rating reaches the conversation and the reports.

The harness (server, pages, visitor) is test_browser.py's. Set BATON_SCREENSHOTS=1 for docs/screenshots/.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from tests import test_browser
from tests.test_browser import Server, Widget, expect, shot

pytestmark = [pytest.mark.browser, pytest.mark.slow]
browser, server, new_page = test_browser.browser, test_browser.server, test_browser.new_page  # the harness's


@pytest.fixture(scope="module")
def lead(server: Server) -> str:
    return server.agent("shop", "reports-lead", "Riley", admin=True)


def test_the_widget_asks_for_a_rating_when_the_conversation_closes(server: Server, lead: str,
                                                                   new_page: Callable[..., Any]) -> None:
    widget = Widget(new_page()).open()
    widget.say("What are your opening hours?")
    widget.expect_reply("We are open Monday to Friday, 9:00 to 17:00.")
    cid = widget.history(server)["conversation"]["id"]
    card = widget.page.locator(".bw-rating")
    expect(card).to_have_count(0)  # nothing to rate while it is open
    server.api(lead, "POST", f"/api/conversations/{cid}/close")
    expect(widget.page.locator(".bw-closed")).to_be_visible()
    expect(card.locator(".bw-rating-title")).to_have_text("How did we do?")
    send = card.get_by_role("button", name="Send")
    expect(send).to_be_disabled()
    card.get_by_role("button", name="4: Good").click()
    expect(card.locator(".bw-star-on")).to_have_count(4)
    card.get_by_label("Comment (optional)").fill("Quick answer <b>thanks</b>")
    shot(widget.page, "widget-csat.png")
    send.click()
    expect(card.locator(".bw-rating-title")).to_have_text("Thank you for your rating!")
    conversation = server.api(lead, "GET", f"/api/conversations/{cid}")["conversation"]
    assert (conversation["csat"], conversation["csat_by"]) == (4, "ai")
    assert conversation["csat_comment"] == "Quick answer <b>thanks</b>"  # stored as the visitor typed it
    # a reload does not ask again for the conversation this browser rated
    widget.page.reload()  # the panel stays open in this tab
    expect(widget.page.locator(".bw-closed")).to_have_count(1)  # the history is in, with the closed divider
    expect(widget.page.locator(".bw-rating")).to_have_count(0)


# Two days of the shop's webchat, known by construction (see tests/test_reports.py for the API's side of it).
SEEDED = {
    "2025-03-01": {"conversations|chat": 8, "ai_resolved|chat": 4, "handed_over|chat": 2, "abandoned|chat": 1,
                   "open|chat": 1, "returned|chat": 1, "handover:customer|chat": 2, "first_response:1|chat": 8,
                   "csat:ai:5|chat": 2, "csat:human:3|chat": 1, "forms_sent|chat": 1},
    "2025-03-02": {"conversations|chat": 2, "conversations|support": 2, "ai_resolved|chat": 1, "handed_over|chat": 1,
                   "handed_over|support": 2, "handover:offer|chat": 1, "handover:model|support": 2},
}


def seed(server: Server) -> None:
    import json

    import redis

    url = json.loads(next(server.root.rglob("valkey.json")).read_text())["url"]
    client = redis.Redis.from_url(url, decode_responses=True)
    for day, fields in SEEDED.items():
        client.hset(f"baton:shop:report:{day}", mapping=fields)
    client.close()


def test_the_reports_page_shows_the_seeded_figures_and_exports_them(server: Server, lead: str,
                                                                    new_page: Callable[..., Any]) -> None:
    seed(server)
    page = new_page()
    test_browser.Inbox(page, lead)
    page.goto("/inbox#/reports")
    expect(page.locator("#reports-title")).to_have_text("Reports")
    page.locator("#reports-from").fill("2025-03-01")
    page.locator("#reports-from").dispatch_event("change")
    page.locator("#reports-to").fill("2025-03-02")
    page.locator("#reports-to").dispatch_event("change")
    status = page.locator("#reports-status")
    expect(status).to_have_text("2025-03-01 to 2025-03-02 (UTC days)")
    tiles = page.locator(".report-tile")
    # 12 conversations: AI resolved 5, handed over 5, abandoned 1, open 1 (shares add up to 100 %)
    expect(tiles.nth(0)).to_contain_text("12")
    expect(page.locator('.report-tile[data-outcome="ai_resolved"]')).to_contain_text("41.7 %")
    expect(page.locator('.report-tile[data-outcome="handed_over"]')).to_contain_text("41.7 %")
    expect(page.locator('.report-tile[data-outcome="abandoned"]')).to_contain_text("8.3 %")
    expect(page.locator('.report-tile[data-outcome="open"]')).to_contain_text("8.3 %")
    expect(tiles.last).to_contain_text("33.3 %")  # durably resolved: 4 of 12
    # the stacked bars: day 1 has four outcomes, day 2 two
    expect(page.locator('#chart-outcomes rect[data-day="2025-03-01"]')).to_have_count(4)
    expect(page.locator('#chart-outcomes rect[data-day="2025-03-02"]')).to_have_count(2)
    expect(page.locator("#chart-reasons")).to_contain_text("customer")
    expect(page.locator("#reports-times tr").first).to_contain_text("≤ 10 s")
    expect(page.locator("#reports-csat tr").first).to_contain_text("5.00 / 5")
    expect(page.locator("#reports-forms")).to_have_text("1 sent, 0 captured (0.0 %)")
    shot(page, "reports.png", full_page=True)
    # one channel
    page.locator("#reports-channel").select_option("support")
    expect(status).to_have_text("2025-03-01 to 2025-03-02 (UTC days), support")
    expect(page.locator('.report-tile[data-outcome="handed_over"]')).to_contain_text("100.0 %")
    # the CSV export, with the session cookie
    href = page.locator("#reports-csv").get_attribute("href")
    assert href == "/api/reports?from=2025-03-01&to=2025-03-02&channel=support&format=csv"
    csv_text = page.evaluate("url => fetch(url).then(r => r.text())", href)
    rows = [line.split(",") for line in csv_text.strip().splitlines()]
    assert rows[0][:6] == ["day", "conversations", "ai_resolved", "handed_over", "abandoned", "open"]
    assert [row[:6] for row in rows[1:]] == [["2025-03-01", "0", "0", "0", "0", "0"],
                                             ["2025-03-02", "2", "0", "2", "0", "0"],
                                             ["total", "2", "0", "2", "0", "0"]]


def test_a_whatsapp_quick_reply_rates_the_closed_conversation_in_the_inbox(server: Server, lead: str,
                                                                          new_page: Callable[..., Any]) -> None:
    from tests.test_browser import inbox_page
    from tests.test_browser_inbox import whatsapp_conversation

    sender = "+15550142077"
    cid = whatsapp_conversation(server, lead, sender, "Maria", "What are your opening hours?")
    assert server.twilio is not None
    deadline = time.monotonic() + 20
    while not any("Monday to Friday" in form.get("Body", [""])[0] for form, _ in server.twilio.created):
        assert time.monotonic() < deadline, "the AI's answer never reached Twilio"
        time.sleep(0.1)
    server.api(lead, "POST", f"/api/conversations/{cid}/close")
    while not any("How did we do?" in form.get("Body", [""])[0] for form, _ in server.twilio.created):
        assert time.monotonic() < deadline, "the rating question never reached Twilio"
        time.sleep(0.1)
    # the quick reply: Twilio posts it like any message
    import uuid

    import httpx
    from twilio.request_validator import RequestValidator

    from tests.fake_twilio import ACCOUNT_SID, AUTH_TOKEN
    from tests.test_browser import WHATSAPP_FROM

    url = f"{server.url}/webhooks/support"
    form = {"MessageSid": f"SM{uuid.uuid4().hex}", "AccountSid": ACCOUNT_SID, "From": f"whatsapp:{sender}",
            "To": WHATSAPP_FROM, "Body": "5", "NumMedia": "0", "ProfileName": "Maria", "WaId": sender.lstrip("+")}
    signature = RequestValidator(AUTH_TOKEN).compute_signature(url, form)
    assert httpx.post(url, data=form, headers={"X-Twilio-Signature": signature}).status_code == 200
    open_now = server.api(lead, "GET", "/api/conversations?view=all&limit=200")["conversations"]
    assert not any(c.get("address") == sender for c in open_now)  # no new conversation for the rating
    conversation = server.api(lead, "GET", f"/api/conversations/{cid}")["conversation"]
    assert (conversation["status"], conversation["csat"], conversation["csat_by"]) == ("closed", 5, "ai")
    inbox = inbox_page(new_page, lead)
    inbox.go(f"#/inbox/closed/{cid}")
    card = inbox.timeline().locator(".card-csat")
    expect(card).to_contain_text("Customer rated 5/5 ★★★★★")
    expect(card).to_contain_text("by a WhatsApp reply")
    shot(inbox.page, "inbox-csat-whatsapp.png")
