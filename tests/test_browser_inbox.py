"""The team inbox against the server's answers, in headless Chromium against a real `baton serve`: assigning
to another agent, channels told apart by type, the workspace's name, the delivery states a reply can be
in, a rate limit, and a session the server ends.

The shop has three channels: a webchat, a webchat named like WhatsApp, and WhatsApp (through a fake Twilio)
named "support". Some server answers are not implemented yet (a delivery of unknown outcome, the resend
route, session.ended): the page is shown them through Playwright's request interception. The harness
(server, pages, agents) is test_browser.py's.
"""

from __future__ import annotations

import re
import secrets
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from twilio.request_validator import RequestValidator

from tests import test_browser
from tests.fake_twilio import ACCOUNT_SID, AUTH_TOKEN
from tests.test_browser import WHATSAPP_FROM, Inbox, Server, expect, inbox_page, shot

pytestmark = pytest.mark.browser
browser, server, new_page = test_browser.browser, test_browser.server, test_browser.new_page  # the harness's
VISITOR = re.compile(r"^Visitor [0-9a-f]{6}$")  # how the server shows a webchat visitor with no name


@pytest.fixture(scope="module")
def alex(server: Server) -> str:
    """An admin of the shop (test_browser.py's shop_admin is another)."""
    return server.agent("shop", "casey", "Alex Rivera", admin=True)


def webchat_conversation(server: Server, channel: str, text: str) -> tuple[str, str]:
    """A visitor's conversation started over the webchat API: (its id, the visitor's token)."""
    token = httpx.post(f"{server.url}/webchat/{channel}/sessions").json()["token"]
    sent = server.api(token, "POST", f"/webchat/{channel}/messages", json={"text": text, "client_id": "c1"})
    return str(sent["conversation"]), token


def whatsapp_conversation(server: Server, alex: str, sender: str, profile: str, text: str) -> str:
    """A customer's WhatsApp message, as Twilio posts it (signed), on the channel named "support"."""
    url = f"{server.url}/webhooks/support"
    form = {"MessageSid": f"SM{uuid.uuid4().hex}", "AccountSid": ACCOUNT_SID, "From": f"whatsapp:{sender}",
            "To": WHATSAPP_FROM, "Body": text, "NumMedia": "0", "ProfileName": profile, "WaId": sender.lstrip("+")}
    signature = RequestValidator(AUTH_TOKEN).compute_signature(url, form)
    assert httpx.post(url, data=form, headers={"X-Twilio-Signature": signature}).status_code == 200
    listed = server.api(alex, "GET", "/api/conversations?view=all&limit=200")["conversations"]
    return str(next(c["id"] for c in listed if c["channel"] == "support" and c.get("address") == sender))


def answered(server: Server, channel: str, token: str) -> list[dict[str, Any]]:
    """The visitor's messages once the AI has answered them."""
    deadline = time.monotonic() + 10
    while True:
        history: list[dict[str, Any]] = server.api(token, "GET", f"/webchat/{channel}/messages")["messages"]
        if any(message["author"] == "ai" for message in history):
            return history
        assert time.monotonic() < deadline, history
        time.sleep(0.05)


def test_assigning_to_another_agent_puts_the_conversation_in_their_inbox(
        server: Server, alex: str, new_page: Callable[..., Any]) -> None:
    sam = inbox_page(new_page, server.agent("shop", "sam", "Sam Lee"))
    sam.go("#/inbox/mine")
    cid, _ = webchat_conversation(server, "chat", "What are your opening hours?")

    inbox = inbox_page(new_page, alex)
    expect(inbox.page.locator("#workspace-name")).to_have_text("Lumen Lamps")  # its name, not its id "shop"
    inbox.go(f"#/inbox/all/{cid}")
    select = inbox.page.get_by_label("Assign to another agent")
    expect(select.locator("option", has_text="Sam Lee")).to_have_count(1)
    expect(select.locator("option", has_text="[object")).to_have_count(0)
    select.select_option(label="Sam Lee")
    expect(inbox.page.locator("#conv-owner")).to_have_text("Sam Lee")

    # Sam, signed in elsewhere, sees it arrive in My Inbox without reloading.
    expect(sam.conversation_row(cid)).to_be_visible()
    expect(sam.conversation_row(cid)).to_contain_text("Sam Lee (you)")
    expect(sam.count("mine")).to_have_text("1")


def test_channels_are_shown_by_their_type_not_their_name(server: Server, alex: str,
                                                         new_page: Callable[..., Any]) -> None:
    web, _ = webchat_conversation(server, "whatsapp-web", "How long does shipping take?")
    whatsapp = whatsapp_conversation(server, alex, "+34612345678", "Maria", "What are your opening hours?")
    inbox = inbox_page(new_page, alex)
    inbox.go("#/inbox/all")

    chip = inbox.conversation_row(web).locator(".chip-channel")
    expect(chip).to_have_attribute("data-channel-type", "webchat")
    expect(chip.locator("svg")).to_have_attribute("data-icon", "globe")
    expect(chip).to_contain_text("whatsapp-web")
    expect(inbox.conversation_row(web).locator(".row-name")).to_have_text(VISITOR)

    chip = inbox.conversation_row(whatsapp).locator(".chip-channel")
    expect(chip).to_have_attribute("data-channel-type", "twilio_whatsapp")
    expect(chip.locator("svg")).to_have_attribute("data-icon", "phone")
    expect(chip).to_contain_text("support")
    expect(inbox.conversation_row(whatsapp).locator(".row-name")).to_have_text("Maria")

    inbox.conversation_row(whatsapp).click()
    expect(inbox.page.locator("#conv-channel svg")).to_have_attribute("data-icon", "phone")
    details = inbox.page.locator("#details")
    expect(details).to_contain_text("+34612345678")
    expect(details).not_to_contain_text("whatsapp:")
    inbox.go("#/contacts")
    expect(inbox.page.locator("#contacts-body")).to_contain_text("+34612345678 · WhatsApp (support)")
    expect(inbox.page.locator("#contacts-body")).not_to_contain_text("whatsapp:")


def test_a_reply_of_unknown_delivery_can_be_sent_again(server: Server, alex: str,
                                                        new_page: Callable[..., Any]) -> None:
    cid, token = webchat_conversation(server, "chat", "What are your opening hours?")
    ai_message = next(m for m in answered(server, "chat", token) if m["author"] == "ai")
    server.api(alex, "POST", f"/api/conversations/{cid}/messages", json={"text": "Anything else I can do?"})
    ai_delivery = ["unknown"]
    resent: list[Any] = []

    def delivery_states(route: Any) -> None:
        """What the server will answer once a crash between a send and its record is told apart."""
        response = route.fetch()
        body = response.json()
        for message in body["conversation"]["messages"]:
            if message["author"] == "ai":
                message["delivery"] = ai_delivery[0]
            elif message["author"] == "agent":
                message.update(delivery="failed", delivery_error="Twilio 63016: outside the 24-hour window",
                               delivery_final=True)
        route.fulfill(response=response, json=body)

    def resend(route: Any) -> None:
        resent.append(route.request)
        ai_delivery[0] = "sending"
        route.fulfill(status=202, json={"id": ai_message["id"]})

    page = new_page(viewport={"width": 1440, "height": 900})
    page.route(f"**/api/conversations/{cid}", delivery_states)
    page.route(f"**/api/conversations/{cid}/messages/*/resend", resend)
    inbox = Inbox(page, alex)
    inbox.go(f"#/inbox/all/{cid}")

    reply = inbox.timeline().locator(".msg-ai")
    expect(reply.locator(".delivery")).to_contain_text("May not have been delivered")
    failed = inbox.timeline().locator(".msg-agent .delivery")
    expect(failed).to_have_text("Not delivered: Twilio 63016: outside the 24-hour window")
    expect(failed.get_by_role("button")).to_have_count(0)  # failed for good: sending again cannot help

    reply.get_by_role("button", name="Send again").click()
    expect(reply.locator(".delivery")).to_have_text("Sending")  # the same bubble, updated in place
    assert [r.url.rsplit("/", 3)[-3:] for r in resent] == [["messages", ai_message["id"], "resend"]]
    assert resent[0].headers["x-csrf-token"]
    expect(reply).to_have_count(1)



def _twilio_post(server: Server, form: dict[str, str]) -> None:
    url = f"{server.url}/webhooks/support"
    signature = RequestValidator(AUTH_TOKEN).compute_signature(url, form)
    assert httpx.post(url, data=form, headers={"X-Twilio-Signature": signature}).status_code == 200


def _created(server: Server, body: str, count: int) -> list[str]:
    """The sids of the messages with this body the fake Twilio created, once there are `count` of them."""
    assert server.twilio is not None
    deadline = time.monotonic() + 10
    while len(sids := [sid for form, sid in server.twilio.created if form["Body"] == [body]]) < count:
        assert time.monotonic() < deadline, server.twilio.created
        time.sleep(0.05)
    return sids


@pytest.mark.slow
def test_a_failed_delivery_says_why_and_is_sent_again_unless_that_cannot_help(
        server: Server, alex: str, new_page: Callable[..., Any]) -> None:
    """The real path: the agent's reply reaches the fake Twilio, whose signed status callback says it was
    undelivered; the inbox shows why, live, and its Send again makes Twilio create the message once more. A second
    failure, for a customer who blocked the number, is shown without Send again."""
    sender = "+34612345099"
    _twilio_post(server, {"MessageSid": "SM" + "e" * 32, "AccountSid": ACCOUNT_SID, "From": f"whatsapp:{sender}",
                          "To": WHATSAPP_FROM, "Body": "Do you ship to Spain?", "NumMedia": "0",
                          "ProfileName": "Marta", "WaId": sender.lstrip("+")})
    listed = server.api(alex, "GET", "/api/conversations?view=all&limit=200")["conversations"]
    [cid] = [c["id"] for c in listed if c["channel"] == "support" and c.get("address") == sender]
    server.api(alex, "POST", f"/api/conversations/{cid}/assign", json={"assignee": "me"})
    reply = server.api(alex, "POST", f"/api/conversations/{cid}/messages", json={"text": "Yes, in three days."})
    [sid] = _created(server, "Yes, in three days.", 1)

    inbox = Inbox(new_page(viewport={"width": 1440, "height": 900}), alex)
    inbox.go(f"#/inbox/all/{cid}")
    bubble = inbox.timeline().locator(f'[data-id="{reply["id"]}"]')
    expect(bubble.locator(".delivery")).to_have_text("Sent (no delivery reports)")  # the harness has no public_url
    expect(inbox.page.locator("#conv-reports")).to_be_visible()
    _twilio_post(server, {"MessageSid": sid, "AccountSid": ACCOUNT_SID, "MessageStatus": "undelivered",
                          "ErrorCode": "30003", "To": f"whatsapp:{sender}", "From": WHATSAPP_FROM})
    line = bubble.locator(".delivery")
    expect(line.locator(".delivery-reason")).to_have_text(
        "Not delivered: Twilio error 30003: the customer's phone is unreachable")  # live, from the status event
    line.get_by_role("button", name="Send again").click()
    [_, again] = _created(server, "Yes, in three days.", 2)
    expect(line).to_have_text(re.compile(r"^(Queued|Sending|Sent \(no delivery reports\))$"))
    expect(bubble).to_have_count(1)  # the same message, sent again: not a second bubble

    _twilio_post(server, {"MessageSid": again, "AccountSid": ACCOUNT_SID, "MessageStatus": "undelivered",
                          "ErrorCode": "63032", "To": f"whatsapp:{sender}", "From": WHATSAPP_FROM})
    expect(line.locator(".delivery-reason")).to_have_text(
        "Not delivered: Twilio error 63032: the customer cannot receive this message (blocked, or not on WhatsApp)")
    expect(line).to_have_attribute("data-final", "yes")
    expect(line.get_by_role("button")).to_have_count(0)


def test_a_rate_limited_reply_is_said_and_tried_once_more(server: Server, alex: str,
                                                          new_page: Callable[..., Any]) -> None:
    cid, _ = webchat_conversation(server, "chat", "How do I return a lamp?")
    attempts: list[str] = []

    def limit_once(route: Any) -> None:
        attempts.append(route.request.post_data_json["text"])
        if len(attempts) == 1:
            route.fulfill(status=429, headers={"Retry-After": "1"}, json={"error": "too many requests"})
        else:
            route.continue_()

    page = new_page(viewport={"width": 1440, "height": 900})
    page.route(f"**/api/conversations/{cid}/messages", limit_once)
    inbox = Inbox(page, alex)
    inbox.go(f"#/inbox/all/{cid}")
    expect(inbox.timeline().locator(".msg-customer")).to_have_count(1)  # the conversation is open
    inbox.page.locator("#composer-text").fill("Happy to help with the return.")
    inbox.page.locator("#composer-text").press("Enter")
    expect(inbox.page.locator(".toast").filter(has_text="Too many requests")).to_contain_text("1 s")
    expect(inbox.timeline().locator(".msg-agent .bubble")).to_have_text(["Happy to help with the return."])
    assert attempts == ["Happy to help with the return."] * 2


def test_a_session_the_server_ends_signs_out_without_reconnecting(alex: str, new_page: Callable[..., Any]) -> None:
    streams: list[str] = []

    def end_sessions(route: Any) -> None:
        streams.append(route.request.url)
        if len(streams) == 1:  # the agent was revoked before the stream began: 401
            route.fulfill(status=401, json={"error": "unknown or revoked agent token"})
        else:  # revoked while the stream is open: the server says so on it, then closes it
            route.fulfill(status=200, content_type="text/event-stream",
                          body='retry: 100\nid: 1-0\n\nevent: session.ended\ndata: {"reason": "revoked"}\n\n')

    page = new_page(viewport={"width": 1440, "height": 900})
    page.route("**/api/events", end_sessions)
    page.goto("/inbox")
    for message in ("Your session has ended. Sign in again to continue.",
                    "Your access to this workspace was revoked. Sign in again to continue."):
        page.get_by_label("Agent token").fill(alex)
        page.get_by_role("button", name="Sign in").click()
        expect(page.locator("#signin-error")).to_have_text(message)
        expect(page.locator("#app")).to_be_hidden()
    page.wait_for_timeout(800)  # a reconnecting loop would have come back every 100 ms
    assert len(streams) == 2


# --- an agent's long paste: kept whole, counted, refused with the reason, sent in parts ---------------------------

def test_a_10000_character_paste_in_the_composer_is_kept_whole_refused_with_the_reason_and_sent_in_parts(
        server: Server, alex: str, new_page: Callable[..., Any]) -> None:
    cid, token = webchat_conversation(server, "chat", "Can you explain the warranty in full?")
    inbox = inbox_page(new_page, alex)
    inbox.go(f"#/inbox/all/{cid}")
    field = inbox.page.locator("#composer-text")
    expect(field).to_be_enabled()
    expect(field).not_to_have_attribute("maxlength", re.compile(".*"))  # it would cut a paste silently
    paragraph = "Every lamp carries a two-year warranty covering parts and labour from the delivery date. " * 15
    pasted = "\n\n".join([paragraph.strip()] * 8)  # 10,672 characters, pasted at once
    assert len(pasted) > 10_000
    field.fill(pasted)
    assert field.input_value() == pasted  # nothing cut
    expect(inbox.page.locator("#composer-count")).to_have_text(f"{len(pasted):,} / 4,096")
    field.press("Enter")
    note = inbox.page.locator("#composer-length")
    expect(note).to_contain_text(f"This reply is {len(pasted):,} characters long; one reply can have at most 4,096, "
                                 "so it is not sent as it is")
    assert field.input_value() == pasted  # refused, kept
    assert not [m for m in server.api(token, "GET", "/webchat/chat/messages")["messages"] if m["author"] == "agent"]
    note.get_by_role("button", name="send it as 3 replies").click()
    expect(field).to_have_value("")
    expect(note).to_be_hidden()
    sent = [m["text"] for m in server.api(token, "GET", "/webchat/chat/messages")["messages"] if m["author"] == "agent"]
    assert len(sent) == 3 and all(len(text) <= 4096 for text in sent)
    assert " ".join(" ".join(sent).split()) == " ".join(pasted.split())  # every word, in order


def test_replies_twilio_refused_are_sent_again_together_from_the_conversation(
        server: Server, alex: str, new_page: Callable[..., Any]) -> None:
    twilio = server.twilio
    assert twilio is not None
    sender = "+34600111222"
    url = f"{server.url}/webhooks/support"
    form = {"MessageSid": "SM" + secrets.token_hex(16), "AccountSid": ACCOUNT_SID, "From": f"whatsapp:{sender}",
            "To": WHATSAPP_FROM, "Body": "Where is my order?", "NumMedia": "0", "ProfileName": "Rosa"}
    signature = RequestValidator(AUTH_TOKEN).compute_signature(url, form)
    assert httpx.post(url, data=form, headers={"X-Twilio-Signature": signature}).status_code == 200
    to_rosa = lambda: [f["Body"][0] for f, _ in twilio.created if f["To"][0] == f"whatsapp:{sender}"]  # noqa: E731
    listed = server.api(alex, "GET", "/api/conversations?view=all&limit=200")["conversations"]
    cid = next(c["id"] for c in listed if c["sender"] == f"whatsapp:{sender}")

    def settled() -> bool:
        """The AI answered and everything it said went out (so Twilio's refusals below reach the agent's replies)."""
        messages = server.api(alex, "GET", f"/api/conversations/{cid}")["conversation"]["messages"]
        sent = [m for m in messages if m.get("delivery")]
        return bool(sent) and all(m["delivery"] not in ("pending", "sending") for m in sent)

    deadline = time.monotonic() + 30
    while not settled():
        assert time.monotonic() < deadline, "the AI never answered"
        time.sleep(0.2)
    # The notice that an agent joined goes to the customer too: three messages are refused.
    twilio.fail_next(400, 30003, "Unreachable destination handset", times=3)  # worth sending again
    for text in ("It left our warehouse today.", "Tracking: LL-4471."):
        server.api(alex, "POST", f"/api/conversations/{cid}/messages", json={"text": text})
    inbox = inbox_page(new_page, alex)
    inbox.go(f"#/inbox/all/{cid}")
    bar = inbox.page.locator("#undelivered-bar")
    expect(bar).to_contain_text("3 messages may not have reached the customer.")
    shot(inbox.page, "inbox-send-all-again.png")
    expect(inbox.timeline().locator(".delivery-failed")).to_have_count(2)  # a notice shows no delivery
    before = len(to_rosa())
    bar.get_by_role("button", name="Send all again").click()
    expect(bar).to_be_hidden()
    deadline = time.monotonic() + 30
    while len(to_rosa()) < before + 3:
        assert time.monotonic() < deadline, to_rosa()
        time.sleep(0.1)
    assert to_rosa()[before:] == ["Alex Rivera joined the conversation.", "It left our warehouse today.",
                                  "Tracking: LL-4471."]
    expect(inbox.timeline().locator(".delivery-failed")).to_have_count(0)
