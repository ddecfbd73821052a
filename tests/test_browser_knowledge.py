"""The knowledge an AI answer came from, seen in the inbox (issue 23)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests import test_browser
from tests.conftest import KNOWLEDGE
from tests.test_browser import Inbox, Server, expect
from tests.test_browser_inbox import answered, webchat_conversation

pytestmark = pytest.mark.browser
browser, server, new_page = test_browser.browser, test_browser.server, test_browser.new_page  # the harness's


@pytest.fixture(scope="module")
def admin(server: Server) -> str:
    return server.agent("shop", "kai", "Kai Moreno", admin=True)


def test_an_ai_answer_shows_the_article_it_came_from(server: Server, admin: str,
                                                      new_page: Callable[..., Any]) -> None:
    hours = KNOWLEDGE[0]
    cid, token = webchat_conversation(server, "chat", "When are you open?")
    reply = next(m for m in answered(server, "chat", token) if m["author"] == "ai")
    assert reply["text"] == hours["a"]

    inbox = Inbox(new_page(), admin)
    inbox.go(f"#/inbox/all/{cid}")
    answer = inbox.timeline().locator(".msg-ai").first
    expect(answer.locator(".bubble")).to_have_text(hours["a"])
    expect(answer.locator(".msg-sources")).to_have_text(f"answered from: {hours['q']}")
    expect(inbox.timeline().locator(".msg-customer .msg-sources")).to_have_count(0)
