"""What Telegram adds to the conformance suite's checks: photos in and out, the API's refusals as SendFailed, the
secret compared in constant time, updates that are no customer message, the token kept out of logs and errors,
and the set-webhook command, each against the local fake Bot API over real HTTP."""

from __future__ import annotations

import ast
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gateway.plugin import BadRequest, Inbound, Media, Outbound, SendFailed, SignatureInvalid
from gateway.testing import ProviderRequest

import baton_telegram.connector as telegram
from baton_telegram.cli import main
from baton_telegram.connector import SECRET_HEADER, Telegram, TelegramSettings
from tests.fake_bot_api import BOT_TOKEN, FakeBotAPI

SECRET = "telegram-secret-0123456789abcdef"
CHAT_ID = 777000111
URL = "https://baton.test/webhooks/tg"
PACKAGE = Path(__file__).resolve().parent.parent


@pytest.fixture
def fake() -> Iterator[FakeBotAPI]:
    with FakeBotAPI() as api:
        yield api


@pytest.fixture
def bot(fake: FakeBotAPI) -> Telegram:
    return Telegram("tg", TelegramSettings(bot_token=BOT_TOKEN, secret_token=SECRET, api_base_url=fake.base_url,
                                           send_timeout=2))


def request(update: dict[str, Any], secret: str | None = SECRET) -> Any:
    headers = {"Content-Type": "application/json"} | ({SECRET_HEADER: secret} if secret is not None else {})
    return ProviderRequest(json.dumps(update).encode(), headers).webhook_request(URL)


def outbound(text: str, rich: dict[str, Any] | None = None) -> Outbound:
    return Outbound(channel="tg", recipient=str(CHAT_ID), text=text, message_id="1-1", conversation_id="1",
                    rich=rich)


def test_a_photo_arrives_as_its_largest_size_with_its_caption_and_downloads(bot: Telegram, fake: FakeBotAPI) -> None:
    sizes = [{"file_id": f"photo-{w}", "file_unique_id": f"u{w}", "width": w, "height": w} for w in (90, 320, 1280)]
    update = fake.update(CHAT_ID, photo=sizes, caption="Is this one in stock?")
    bot.verify(request(update))
    [item] = bot.parse(request(update))
    assert isinstance(item, Inbound)
    assert (item.sender, item.provider_id, item.text, item.profile_name) == \
        (str(CHAT_ID), str(update["update_id"]), "Is this one in stock?", "Maria Lopez")
    assert item.media == (Media(content_type="image/jpeg", provider_id="photo-1280"),)
    fake.add_file("photo-1280", b"\xff\xd8\xff\xe0 a jpeg")
    content = bot.fetch_media(item.media[0])
    assert (content.data, content.content_type) == (b"\xff\xd8\xff\xe0 a jpeg", "image/jpeg")
    assert ("getFile", {"file_id": "photo-1280"}) in fake.calls


def test_the_update_id_is_the_dedupe_key_and_the_chat_the_customer(bot: Telegram, fake: FakeBotAPI) -> None:
    update = fake.update(CHAT_ID, "hello", update_id=880000123)
    [item] = bot.parse(request(update))
    assert isinstance(item, Inbound)
    assert (item.provider_id, item.sender, item.extra["username"]) == ("880000123", str(CHAT_ID), "maria_l")


def test_the_customers_own_shared_contact_gives_their_phone(bot: Telegram, fake: FakeBotAPI) -> None:
    own = fake.update(CHAT_ID, contact={"phone_number": "34 612 345 678", "first_name": "Maria", "user_id": CHAT_ID})
    someone = fake.update(CHAT_ID, contact={"phone_number": "+14155550100", "first_name": "Bob", "user_id": 5})
    [mine], [theirs] = bot.parse(request(own)), bot.parse(request(someone))
    assert isinstance(mine, Inbound) and isinstance(theirs, Inbound)
    assert (mine.phone, theirs.phone) == ("+34612345678", "")
    assert "+14155550100" in theirs.text


def test_updates_that_are_no_customer_message_are_acknowledged_not_recorded(bot: Telegram, fake: FakeBotAPI,
                                                                            caplog: pytest.LogCaptureFixture) -> None:
    edited = {"update_id": 880000200, "edited_message": fake.update(CHAT_ID, "edited")["message"]}
    group = fake.update(-100200300, "hi all")
    group["message"]["chat"] = {"id": -100200300, "type": "supergroup", "title": "Fans"}
    with caplog.at_level(logging.INFO, logger="baton_telegram"):
        assert bot.parse(request(edited)) == [] and bot.parse(request(group)) == []
    assert "edited_message" in caplog.text and "supergroup" in caplog.text  # said, not silently dropped


@pytest.mark.parametrize(("body", "field"), [(b"not json", None), (b"[1]", None), (b'{"message": {}}', "update_id"),
                                             (b'{"update_id": true}', "update_id"),
                                             (b'{"update_id": 5, "message": {"chat": {"id": "x"}}}',
                                              "message.chat.id")])
def test_a_malformed_update_is_a_bad_request_naming_the_field(bot: Telegram, body: bytes, field: str | None) -> None:
    with pytest.raises(BadRequest) as refused:
        bot.parse(ProviderRequest(body, {SECRET_HEADER: SECRET}).webhook_request(URL))
    assert refused.value.details.get("field") == field


def test_the_secret_is_compared_in_constant_time(bot: Telegram, fake: FakeBotAPI,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    compared: list[tuple[bytes, bytes]] = []
    real = telegram.hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(telegram.hmac, "compare_digest", spy)
    update = fake.update(CHAT_ID, "hi")
    bot.verify(request(update))
    with pytest.raises(SignatureInvalid):
        bot.verify(request(update, SECRET[:-1] + "X"))
    with pytest.raises(SignatureInvalid):
        bot.verify(request(update, None))
    assert compared == [(SECRET.encode(), SECRET.encode()), ((SECRET[:-1] + "X").encode(), SECRET.encode())]


def test_one_photo_goes_by_send_photo_several_by_send_media_group(bot: Telegram, fake: FakeBotAPI) -> None:
    one = bot.send(outbound("Here it is", {"type": "media", "urls": ["https://shop.example/a.jpg"]}))
    two = bot.send(outbound("Both colours", {"type": "media", "urls": ["https://shop.example/a.jpg",
                                                                       "https://shop.example/b.jpg"]}))
    text = bot.send(outbound("Just words"))
    assert [(m.method, m.chat_id, m.text, m.photos) for m in fake.sent] == [
        ("sendPhoto", str(CHAT_ID), "Here it is", ("https://shop.example/a.jpg",)),
        ("sendMediaGroup", str(CHAT_ID), "Both colours", ("https://shop.example/a.jpg", "https://shop.example/b.jpg")),
        ("sendMessage", str(CHAT_ID), "Just words", ()),
    ]
    assert [r.provider_id for r in (one, two, text)] == [f"{CHAT_ID}:{m.message_id}" for m in fake.sent]


def test_a_caption_too_long_for_a_photo_is_refused_before_sending(bot: Telegram, fake: FakeBotAPI) -> None:
    with pytest.raises(SendFailed) as failure:
        bot.send(outbound("x" * 1025, {"type": "media", "urls": ["https://shop.example/a.jpg"]}))
    assert failure.value.retryable is False and fake.calls == []


def test_the_contact_form_is_sent_as_text(bot: Telegram, fake: FakeBotAPI) -> None:
    form = {"type": "contact_form",
            "fields": [{"name": "phone", "label": "Phone"}, {"name": "email", "label": "Email"}]}
    bot.send(outbound("Nobody is free right now.", form))
    [sent] = fake.sent
    assert (sent.method, sent.text) == ("sendMessage", "Nobody is free right now.\nReply with your phone, email.")


@pytest.mark.parametrize(("status", "description", "retryable", "why"), [
    (403, "Forbidden: bot was blocked by the user", False, "blocked the bot"),
    (400, "Bad Request: chat not found", False, "chat not found"),
    (429, "Too Many Requests: retry after 7", True, "retry after 7"),
    (500, "Internal Server Error", True, "HTTP 500"),
])
def test_the_apis_refusals_are_send_failures_as_they_mean(bot: Telegram, fake: FakeBotAPI, status: int,
                                                          description: str, retryable: bool, why: str) -> None:
    if status == 403:
        fake.block(str(CHAT_ID))
    else:
        fake.fail_next(status, description, **({"retry_after": 7} if status == 429 else {}))
    with pytest.raises(SendFailed) as failure:
        bot.send(outbound("hello"))
    assert (failure.value.retryable, failure.value.maybe_sent) == (retryable, False)
    assert why in failure.value.reason and failure.value.details["status"] == status
    if status == 429:
        assert failure.value.details["retry_after"] == 7
    assert fake.sent == []


def test_a_wrong_token_is_refused_and_never_shown(fake: FakeBotAPI, caplog: pytest.LogCaptureFixture) -> None:
    wrong = "987654321:AAwrongTokenWrongTokenWrongToken01"
    bot = Telegram("tg", TelegramSettings(bot_token=wrong, secret_token=SECRET, api_base_url=fake.base_url))
    with caplog.at_level(logging.DEBUG), pytest.raises(SendFailed) as failure:
        bot.send(outbound("hello"))
    assert failure.value.retryable is False and "token is wrong" in failure.value.reason
    assert wrong not in failure.value.reason
    assert caplog.records and wrong.split(":")[1] not in caplog.text  # httpx logs each URL: the token is cut out


def test_set_webhook_sends_the_secret_and_asks_for_messages_only(fake: FakeBotAPI,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    env = ["--bot-token", BOT_TOKEN, "--secret-token", SECRET, "--api-base-url", fake.base_url]
    assert main([*env, "set-webhook", "--url", URL]) == 0
    assert fake.webhook == {"url": URL, "secret_token": SECRET, "allowed_updates": ["message"]}
    assert main([*env, "webhook-info"]) == 0
    assert json.loads(capsys.readouterr().out.split("\n", 1)[1])["url"] == URL


def test_set_webhook_names_a_bad_setting_and_a_refusal(fake: FakeBotAPI, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--bot-token", BOT_TOKEN, "--secret-token", "short", "set-webhook", "--url", URL]) == 2
    assert "secret_token" in capsys.readouterr().err
    wrong = "987654321:AAwrongTokenWrongTokenWrongToken01"
    assert main(["--bot-token", wrong, "--secret-token", SECRET, "--api-base-url", fake.base_url,
                 "set-webhook", "--url", URL]) == 1
    error = capsys.readouterr().err
    assert "token is wrong" in error and wrong not in error and fake.webhook == {}


def imported(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
    return {name for name in found if name.split(".")[0] in ("gateway", "connectors", "plugins")}


def test_the_package_imports_only_batons_public_api() -> None:
    for path in (PACKAGE / "src").rglob("*.py"):
        assert imported(path) <= {"gateway.plugin"}, path
    for path in (PACKAGE / "tests").rglob("*.py"):
        assert imported(path) <= {"gateway.plugin", "gateway.testing"}, path
