"""The webchat widget's contract with the server, in headless Chromium against a real `baton serve`: the
channel's own settings before any session, one script tag on another site, the event stream read with
the token in a header, an expired session replaced, a rate limit waited out.

The harness (server, pages, visitor) is test_browser.py's; the channel here is `opal-chat`, with its own
title, greeting and AI agent name.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import re
import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests import test_browser
from tests.test_browser import Server, Widget, expect

pytestmark = pytest.mark.browser
browser, server, new_page = test_browser.browser, test_browser.server, test_browser.new_page  # the harness's

TITLE = test_browser.OPAL_TITLE
GREETING = test_browser.OPAL_GREETING


@contextlib.contextmanager
def another_site(baton: str) -> Iterator[str]:
    """A shop's page on its own origin (another port), embedding the widget with the one documented tag."""
    page = ("<!doctype html><html lang=en><title>Another shop</title><h1>Another shop</h1>"
            f'<script src="{baton}/widget.js" data-channel="opal-chat" async></script>').encode()

    class Shop(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the http.server API)
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    site = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Shop)
    thread = threading.Thread(target=site.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{site.server_address[1]}/shop"
    finally:
        site.shutdown()
        site.server_close()
        thread.join(timeout=2)


def webchat_requests(page: Any) -> list[Any]:
    """Every request the page makes to the webchat API, as it makes them."""
    seen: list[Any] = []
    page.on("request", lambda request: "/webchat/" in request.url and seen.append(request))
    return seen


def posts(requests: list[Any], path: str) -> list[Any]:
    return [r for r in requests if r.method == "POST" and r.url.endswith(path)]


def test_a_fresh_widget_shows_the_channel_title_and_greeting_before_anything_is_sent(
        new_page: Callable[..., Any]) -> None:
    page = new_page()  # a new context: empty storage, as a first visit
    requests = webchat_requests(page)
    widget = Widget(page, channel="opal-chat").open()
    expect(page.locator(".bw-title")).to_have_text(TITLE)
    expect(page.locator(".bw-greeting")).to_have_text(GREETING)
    expect(widget.input).not_to_have_attribute("maxlength", re.compile(".*"))  # it would cut a paste silently
    assert posts(requests, "/sessions") == []  # opening creates nothing on the server

    widget.say("talk to a human")
    widget.expect_reply("connecting you with a member of our team")
    # The first thing the AI says here is the handover notice: it carries the AI agent's name, not "Assistant".
    expect(page.locator(".bw-from-ai .bw-who-name").first).to_have_text("Opal")
    assert len(posts(requests, "/sessions")) == 1
    expect(page.locator(".bw-greeting")).to_have_count(1)


def test_one_script_tag_on_another_site_and_the_token_never_in_a_url(server: Server,
                                                                      new_page: Callable[..., Any]) -> None:
    page = new_page()
    requests = webchat_requests(page)
    with another_site(server.url) as shop:
        widget = Widget(page, channel="opal-chat", url=shop, origin=server.url).open()
        expect(page.locator(".bw-greeting")).to_have_text(GREETING)
        widget.say("How long does shipping take?")
        widget.expect_reply("Delivery takes 2-4 business days.")

    assert widget.token()
    assert not [r.url for r in requests if "token" in r.url]
    streams = [r for r in requests if r.url.endswith("/webchat/opal-chat/events")]
    assert streams and all(r.all_headers()["authorization"] == f"Bearer {widget.token()}" for r in streams)


def test_an_expired_session_is_replaced_without_the_visitor_noticing(new_page: Callable[..., Any]) -> None:
    page = new_page()
    requests = webchat_requests(page)
    widget = Widget(page, channel="opal-chat").open()
    widget.say("What are your opening hours?")
    widget.expect_reply("Monday to Friday")
    first = widget.token()

    # The server no longer knows the stored session (expired, revoked): its calls answer 401.
    page.evaluate("([key, session]) => localStorage.setItem(key, session)",
                  [widget.storage_key, json.dumps({"token": "v1.expired.session", "visitor": "gone"})])
    page.reload()
    expect(widget.input).to_be_visible()
    expect(page.locator(".bw-greeting")).to_have_text(GREETING)
    widget.say("How long does shipping take?")
    widget.expect_reply("Delivery takes 2-4 business days.")
    second = widget.token()
    assert second not in (first, "v1.expired.session")

    # A send answered 401 (the session ended meanwhile): a new session, and the message goes once.
    rejected: list[str] = []

    def expire_once(route: Any) -> None:
        if route.request.method == "POST" and not rejected:
            rejected.append(route.request.post_data_json["client_id"])
            route.fulfill(status=401, json={"error": "session expired"})
        else:
            route.continue_()

    page.route("**/webchat/opal-chat/messages", expire_once)
    widget.say("How do I return a lamp?")
    widget.expect_reply("Start a return from the order page within 30 days.")
    assert widget.token() not in (first, second)
    expect(page.locator(".bw-pending, .bw-failed")).to_have_count(0)
    expect(page.locator(".bw-connection")).to_be_hidden()
    sent = posts(requests, "/messages")
    assert [r.post_data_json["client_id"] for r in sent].count(rejected[0]) == 2  # the same message, again


def test_a_rate_limited_message_waits_calmly_and_is_sent_once(server: Server,
                                                              new_page: Callable[..., Any]) -> None:
    widget = Widget(new_page(), channel="opal-chat").open()
    attempts: list[str] = []

    def limit_once(route: Any) -> None:
        if route.request.method != "POST":
            route.continue_()
            return
        attempts.append(route.request.post_data_json["client_id"])
        if len(attempts) == 1:
            route.fulfill(status=429, headers={"Retry-After": "1"}, json={"error": "too many messages"})
        else:
            route.continue_()

    widget.page.route("**/webchat/opal-chat/messages", limit_once)
    widget.input.fill("What are your opening hours?")
    widget.input.press("Enter")
    status = widget.page.locator(".bw-pending .bw-status")
    expect(status).to_have_text("Sending too fast, retrying in 1 s")
    widget.expect_reply("Monday to Friday")
    assert len(attempts) == 2 and attempts[0] == attempts[1]
    texts = [m.get("text") for m in widget.history(server)["messages"] if m["author"] == "customer"]
    assert texts == ["What are your opening hours?"]


def test_the_event_stream_parser(server: Server, new_page: Callable[..., Any]) -> None:
    page = new_page()
    page.goto("/demo?channel=opal-chat")
    parsed = page.evaluate("""async (chunks) => {
        const { eventParser } = await import("/embed/inbox/stream.js");
        const frames = [];
        const retries = [];
        const feed = eventParser((frame) => frames.push(frame), (ms) => retries.push(ms));
        for (const chunk of chunks) feed(chunk);
        return { frames, retries };
    }""", [
        ": keepalive\n\nretry: 2500\nid: 1/2\nevent: message\ndata: {\"a\":",
        "1}\n\nid: 1/3\r",  # a CRLF split across two chunks
        "\ndata: line one\r\ndata:line two\r\n\r\n",
        "data: same id\n\nid\n\n",
        "event: session.ended\ndata: {}\n",  # no blank line yet: not dispatched
    ])
    assert parsed["retries"] == [2500]
    assert parsed["frames"] == [
        {"id": None, "event": "message", "data": None},
        {"id": "1/2", "event": "message", "data": '{"a":1}'},
        {"id": "1/3", "event": "message", "data": "line one\nline two"},
        {"id": "1/3", "event": "message", "data": "same id"},
        {"id": "", "event": "message", "data": None},
    ]


def test_the_widget_modules_are_importable_from_any_site(server: Server) -> None:
    module = httpx.get(f"{server.url}/embed/widget/main.js", headers={"Origin": "https://shop.example"})
    assert module.status_code == 200
    assert module.headers["access-control-allow-origin"] == "*"
    assert module.headers["content-type"].split(";")[0] in ("text/javascript", "application/javascript")
    assert httpx.get(f"{server.url}/embed/inbox/dom.js").headers["access-control-allow-origin"] == "*"
    assert httpx.get(f"{server.url}/embed/widget.css").status_code == 404  # modules only


# --- the typing dots: shown while the AI works, gone when its answer arrives, never after -------------------------

TYPING_SPY = """() => {
    const root = document.querySelector("#baton-webchat").shadowRoot;
    const dots = root.querySelector(".bw-typing");
    window.__typing = [];  // [ms, 'shown' | 'hidden' | 'answer']
    const note = (what) => window.__typing.push([performance.now(), what]);
    new MutationObserver(() => note(dots.hidden ? "hidden" : "shown")).observe(dots, { attributes: true,
        attributeFilter: ["hidden"] });
    new MutationObserver((changes) => {
        for (const change of changes) for (const node of change.addedNodes) {
            if (node.classList && node.classList.contains("bw-from-ai")) note("answer");
        }
    }).observe(root.querySelector(".bw-log"), { childList: true });
}"""


def typing_after_the_answer(page: Any) -> list[str]:
    """What the dots did from the AI's first answer on (nothing but staying hidden is right)."""
    timeline = [what for _, what in page.evaluate("window.__typing")]
    assert "answer" in timeline, timeline
    return [what for what in timeline[timeline.index("answer") + 1:] if what == "shown"]


def test_the_typing_dots_show_while_the_ai_works_and_go_when_the_answer_arrives(new_page: Callable[..., Any]) -> None:
    page = new_page()
    widget = Widget(page, channel="opal-chat").open()
    page.evaluate(TYPING_SPY)
    dots = page.locator(".bw-typing")
    # The answer cannot arrive while the event stream and the history (read at each failed attempt) are held back:
    # the AI is still "working" for the widget. (With only the stream held, a quick answer came with the history
    # before the dots were looked for.)
    page.route("**/webchat/opal-chat/events", lambda route: route.abort("connectionreset"))

    def no_history(route: Any) -> None:
        if route.request.method == "GET":
            route.abort("connectionreset")
        else:
            route.continue_()

    page.route("**/webchat/opal-chat/messages*", no_history)
    widget.say("How long does shipping take?")
    expect(dots).to_be_visible()
    page.unroute("**/webchat/opal-chat/messages*")
    page.unroute("**/webchat/opal-chat/events")  # the stream comes back, with the answer
    widget.expect_reply("Delivery takes 2-4 business days.")
    expect(dots).to_be_hidden()
    page.wait_for_timeout(1500)
    assert typing_after_the_answer(page) == []


def test_the_typing_dots_never_come_back_when_the_answer_beats_the_sending(new_page: Callable[..., Any]) -> None:
    page = new_page()
    widget = Widget(page, channel="opal-chat").open()
    page.evaluate(TYPING_SPY)
    held: list[tuple[Any, Any]] = []

    def hold_the_response(route: Any) -> None:
        if route.request.method != "POST":
            route.continue_()
            return
        held.append((route, route.fetch()))  # recorded on the server, its response kept back

    page.route("**/webchat/opal-chat/messages", hold_the_response)
    widget.input.fill("What are your opening hours?")
    widget.input.press("Enter")
    widget.expect_reply("Monday to Friday")  # over the event stream, before the POST's response
    route, response = held[0]
    route.fulfill(response=response)
    expect(page.locator(".bw-from-me .bw-status").last).to_have_text("")
    page.wait_for_timeout(1500)
    expect(page.locator(".bw-typing")).to_be_hidden()
    assert typing_after_the_answer(page) == []


# --- a paste longer than one message: said before sending, and sent in parts if the visitor wants ---------------

def test_a_10000_character_paste_is_not_cut_the_visitor_is_told_and_may_send_it_in_parts(
        server: Server, new_page: Callable[..., Any]) -> None:
    page = new_page()
    widget = Widget(page, channel="opal-chat").open()
    paragraph = "My lamp flickers when the dimmer is below half, and it hums. " * 21  # 1,302 characters
    pasted = "\n\n".join([paragraph.strip()] * 8)  # 10,422 characters, pasted at once
    pasted += "\n\nWhat should I do?" + " Thanks." * 4
    assert len(pasted) > 10_000
    widget.input.fill(pasted)
    assert widget.input.input_value() == pasted  # nothing cut
    widget.input.press("Enter")
    note = page.locator(".bw-length")
    expect(note).to_contain_text(f"Your message is {len(pasted):,} characters long; one message can have at most 4,096")
    expect(page.locator(".bw-from-me")).to_have_count(0)  # nothing was sent
    assert widget.input.input_value() == pasted
    note.get_by_role("button", name="send it as 3 messages").click()
    expect(page.locator(".bw-from-me")).to_have_count(3)
    expect(page.locator(".bw-from-me .bw-status").last).to_have_text("")
    expect(note).to_be_hidden()
    sent = [m["text"] for m in widget.history(server)["messages"] if m["author"] == "customer"]
    assert len(sent) == 3 and all(len(text) <= 4096 for text in sent)
    assert " ".join(" ".join(sent).split()) == " ".join(pasted.split())  # every word, in order
    assert all(text.endswith(".") for text in sent[:-1])  # broken between paragraphs, not mid-word


# --- the widget speaks the conversation's language ------------------------------------------------------------

def test_a_spanish_speaking_visitor_gets_the_contact_form_and_the_widget_s_own_words_in_spanish(
        server: Server, new_page: Callable[..., Any]) -> None:
    """The help workspace is English by default; the visitor writes Spanish. The handover notice, the timer's form (its
    text, labels, title, button, the browser's own check and the thanks), its confirmation and the widget's own
    words (header, placeholder) follow the language the server read."""
    widget = Widget(new_page(viewport={"width": 1280, "height": 800}), channel="help").open()
    expect(widget.input).to_have_attribute("placeholder", "Write a message…")  # the workspace's language: English
    widget.say("Quiero hablar con una persona, por favor")
    widget.expect_reply("Te estoy pasando con una persona de nuestro equipo")
    form = widget.page.locator(".bw-form")
    expect(form).to_be_visible()  # after the 1.5 s timeout, fired by the worker's timer loop
    expect(form.locator(".bw-form-title")).to_have_text("Déjanos tus datos")
    expect(form.locator(".bw-form-intro")).to_contain_text("Perdona la espera")
    expect(widget.input).to_have_attribute("placeholder", "Escribe un mensaje…")
    expect(widget.page.locator(".bw-sub")).to_have_text(re.compile(r"^(Respondemos en segundos|Enseguida te atiende)"))
    form.get_by_label("Correo electrónico").fill("no-es-un-correo")
    form.get_by_role("button", name="Enviar mis datos").click()
    expect(form.locator(".bw-field-error").filter(has_text="tu@ejemplo.com")).to_be_visible()
    expect(form.locator(".bw-form-status")).to_have_text("Revisa los campos marcados.")
    form.get_by_label("Correo electrónico").fill("lucia@example.com")
    form.get_by_role("button", name="Enviar mis datos").click()
    expect(widget.page.locator(".bw-form-done")).to_contain_text("Gracias, ya tenemos tus datos.")
    widget.expect_notice("¡Gracias! Te contactaremos en lucia@example.com.")
