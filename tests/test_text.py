"""A reply fits its channel: the model's output is capped from the channel's limit, and what still exceeds it (a
model that ignores the cap, an agent's long text) goes out as several messages of at most the limit each, in order,
cut after four; an oversized earlier message is not put into every later prompt."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from gateway.deployment import Deployment
from gateway.text import CUT, MAX_PARTS, PROMPT_TEXT, fit, max_tokens
from gateway.web.app import create_app
from tests.conftest import Visitor, agent_token, chat_channel, hosted_model, run_jobs, workspace_of
from tests.fake_twilio import FakeTwilio
from tests.test_webhooks import inbound, post_signed, whatsapp_channel

HUGE = ("Our lamps are made by hand in small batches, and every one is tested twice. " * 2_700)[:200_000]


@pytest.fixture
def twilio() -> Iterator[FakeTwilio]:
    with FakeTwilio() as fake:
        yield fake


def test_fit_breaks_where_a_reader_would_and_cuts_after_the_last_part() -> None:
    paragraphs = "\n\n".join(["One sentence. Another one here."] * 80)  # 2,638 characters
    parts = fit(paragraphs, 1600)
    assert [len(p) <= 1600 for p in parts] == [True, True]
    assert parts[0].endswith("here.") and parts[1].startswith("One sentence.")
    assert " ".join(parts).replace("\n\n", " ") == paragraphs.replace("\n\n", " ")  # nothing lost within the parts
    words = fit("word " * 2000, 1600)
    assert all(not p.endswith("wor") for p in words[:-1])  # a word is never split
    cut = fit(HUGE, 1600)
    assert len(cut) == MAX_PARTS and all(len(p) <= 1600 for p in cut) and cut[-1].endswith(CUT)
    assert fit("  as it is  ", 1600) == ["  as it is  "]
    assert fit("x" * 5000, 1000, max_parts=2) == ["x" * 1000, "x" * 999 + CUT]


def test_a_200_kb_answer_on_whatsapp_is_capped_split_and_sent_in_order_within_twilio_s_limit(
        make_deployment: Callable[..., Deployment], twilio: FakeTwilio, fake_openai: Any) -> None:
    deployment = make_deployment(channels=[whatsapp_channel(twilio)], ai_agent=hosted_model(fake_openai))
    fake_openai.reply(HUGE)  # a model that ignores max_tokens
    with TestClient(create_app(deployment)) as client:
        assert post_signed(client, inbound("SM" + "a" * 32, "Tell me everything about your lamps")).status_code == 200
        run_jobs(deployment)
        assert fake_openai.requests[0]["max_tokens"] == max_tokens(1600) < 500
        bodies = [r.form["Body"][0] for r in twilio.requests]
        assert len(bodies) == MAX_PARTS and all(len(body) <= 1600 for body in bodies)
        assert bodies[0].startswith("Our lamps are made by hand") and bodies[-1].endswith(CUT)
        cid = next(iter(deployment.redis.zrange(f"baton:{workspace_of(deployment)}:view:open", 0, -1)))
        stored = [m["text"] for m in deployment.store.messages(workspace_of(deployment), cid) if m["author"] == "ai"]
        assert stored == bodies  # what the customer got is what the history holds
        fake_openai.reply("Anything else?")
        assert post_signed(client, inbound("SM" + "b" * 32, "And the prices?")).status_code == 200
        run_jobs(deployment)
        prompt = fake_openai.requests[1]["messages"]
        assert sum(len(m["content"]) for m in prompt if m["role"] == "assistant") <= MAX_PARTS * 1600


def test_webchat_answers_are_capped_from_the_widget_s_limit(client: TestClient, deployment: Deployment,
                                                           make_deployment: Callable[..., Deployment],
                                                           fake_openai: Any) -> None:
    hosted = make_deployment(ai_agent=hosted_model(fake_openai, litellm_params={
        "api_base": fake_openai.base_url, "api_key": "test", "max_tokens": 200}))
    with TestClient(create_app(hosted)) as http:
        Visitor(http, chat_channel(hosted)).say("hello")
        run_jobs(hosted)
    assert fake_openai.requests[0]["max_tokens"] == 200  # a smaller cap of the config's own is kept
    assert max_tokens(4096) > 1000


def test_an_agent_s_long_reply_goes_to_whatsapp_as_several_messages_in_order(
        make_deployment: Callable[..., Deployment], twilio: FakeTwilio) -> None:
    deployment = make_deployment(channels=[whatsapp_channel(twilio)])
    with TestClient(create_app(deployment)) as client:
        assert post_signed(client, inbound("SM" + "c" * 32, "transfer to agent")).status_code == 200
        run_jobs(deployment)
        cid = next(iter(deployment.redis.zrange(f"baton:{workspace_of(deployment)}:view:open", 0, -1)))
        text = "\n\n".join((f"Step {n}: " + "do this carefully. " * 20).strip() for n in range(1, 11))  # 3,9xx
        sent = client.post(f"/api/conversations/{cid}/messages", json={"text": text},
                           headers=agent_token(deployment))
        assert sent.status_code == 201
        run_jobs(deployment)
    bodies = [r.form["Body"][0] for r in twilio.requests]
    bodies = bodies[bodies.index("Alex joined the conversation.") + 1:]  # after the handover and the join notice
    assert len(bodies) == 3 and all(len(body) <= 1600 for body in bodies)
    assert "\n\n".join(bodies) == text
    assert bodies[0].startswith("Step 1:") and "Step 10:" in bodies[-1]


def test_an_oversized_earlier_message_is_shortened_in_the_prompt() -> None:
    from gateway.ai import chat_messages
    from gateway.config import AIAgentConfig

    history: list[Any] = [{"id": "1-0", "author": "customer", "text": "hi", "visibility": "public"},
                          {"id": "1-1", "author": "ai", "text": HUGE, "visibility": "public"}]
    messages = chat_messages(AIAgentConfig(), [], history, handed_back=False)
    assert len(messages[-1]["content"]) == PROMPT_TEXT + len(CUT)
