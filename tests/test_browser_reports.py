"""The customer's verdict and the team's figures in headless Chromium against a real `baton serve`: the widget asks
for a rating when a conversation closes, and the rating reaches the conversation and the reports.

The harness (server, pages, visitor) is test_browser.py's. Set BATON_SCREENSHOTS=1 for docs/screenshots/.
"""

from __future__ import annotations

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
