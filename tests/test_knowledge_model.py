from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pluggy
import pytest

from gateway import hookspecs
from gateway.knowledge import KnowledgeEntry, instructions, render_knowledge, strip_unknown
from gateway.llm import completion, import_litellm, install_provider, uninstall_provider
from plugins import knowledge_model
from tests.fake_openai import FakeOpenAI

litellm = import_litellm()

ENTRIES = [
    KnowledgeEntry("What are your opening hours?", "We are open Monday to Friday, 9:00–17:00."),
    KnowledgeEntry("Are you open on weekends?", "Saturdays 10:00–14:00; on Sundays we are closed."),
    KnowledgeEntry("How much does shipping cost?", "Shipping is free above €50, otherwise €4.90."),
    KnowledgeEntry(
        "How do I return an item?", "Send it back within 30 days with the label from your order email."
    ),
]
SYSTEM = f"You are Acme's assistant.\n\n{render_knowledge(ENTRIES)}\n\n{instructions()}"
HANDOVER = {
    "type": "function",
    "function": {
        "name": "handover_to_human",
        "description": "Transfer the conversation to a human agent.",
        "parameters": {
            "type": "object",
            "properties": {"reason": {"type": "string"}},
            "required": ["reason"],
        },
    },
}


@pytest.fixture
def baton_provider() -> Iterator[None]:
    manager = pluggy.PluginManager("baton")
    manager.add_hookspecs(hookspecs)
    manager.register(knowledge_model)
    registered: list[Any] = []
    manager.hook.register_llm_providers(register=registered.append)
    [provider] = registered
    assert provider.provider == "baton"
    try:
        install_provider(provider.provider, provider)
        yield
    finally:
        uninstall_provider("baton")


def ask(*questions: str, **kwargs: Any) -> Any:
    messages = [{"role": "system", "content": SYSTEM}] + [{"role": "user", "content": q} for q in questions]
    return completion(model="baton/knowledge", messages=messages, **kwargs)


def reply_text(*questions: str) -> str:
    return ask(*questions).choices[0].message.content


@pytest.mark.usefixtures("baton_provider")
def test_answers_a_paraphrased_question_from_the_knowledge() -> None:
    response = ask("what does delivery cost me?")

    assert isinstance(response, litellm.ModelResponse)
    assert response.choices[0].message.content == "Shipping is free above €50, otherwise €4.90."
    assert response.choices[0].finish_reason == "stop"
    assert response.usage.prompt_tokens > 0 and response.usage.completion_tokens > 0


@pytest.mark.usefixtures("baton_provider")
def test_a_short_follow_up_borrows_the_previous_question() -> None:
    assert reply_text("When do you open?", "and on weekends?") == ENTRIES[1].answer


@pytest.mark.usefixtures("baton_provider")
@pytest.mark.parametrize("question", ["What is the capital of France?", "Do you sell gift cards?"])
def test_unrelated_question_is_marked_unknown(question: str) -> None:
    text, unknown = strip_unknown(reply_text(question))

    assert unknown
    assert text.startswith("I'm sorry")


@pytest.mark.usefixtures("baton_provider")
def test_greeting_names_what_it_can_help_with() -> None:
    text = reply_text("Hello!")

    assert strip_unknown(text) == (text, False)
    assert text.startswith("Hello!") and ENTRIES[0].question in text


@pytest.mark.usefixtures("baton_provider")
def test_asks_for_handover_with_the_tool_when_offered() -> None:
    message = ask("I want to talk to a human", tools=[HANDOVER]).choices[0].message

    assert message.tool_calls[0].function.name == "handover_to_human"
    assert json.loads(message.tool_calls[0].function.arguments) == {"reason": knowledge_model.HANDOVER_REASON}


@pytest.mark.usefixtures("baton_provider")
def test_async_completion_gives_the_same_answer() -> None:
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "opening hours?"}]

    response = asyncio.run(litellm.acompletion(model="baton/knowledge", messages=messages))

    assert response.choices[0].message.content == ENTRIES[0].answer


def test_install_provider_replaces_instead_of_duplicating() -> None:
    first, second = knowledge_model.KnowledgeModel(), knowledge_model.KnowledgeModel()
    try:
        install_provider("baton", first)
        install_provider("baton", second)
        handlers = [
            item["custom_handler"] for item in litellm.custom_provider_map if item["provider"] == "baton"
        ]
        assert handlers == [second]
    finally:
        uninstall_provider("baton")


def test_openai_provider_over_real_http_against_the_fake() -> None:
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "Can I talk to someone?"}]
    with FakeOpenAI() as fake:
        fake.reply("Scripted answer.").reply_tool_call("handover_to_human", {"reason": "asked for a person"})
        call = {"model": "openai/gpt-4o-mini", "api_base": fake.base_url, "api_key": "test"}

        text = completion(**call, messages=messages, tools=[HANDOVER]).choices[0].message
        tool = completion(**call, messages=messages, tools=[HANDOVER]).choices[0].message
        default = completion(**call, messages=messages).choices[0].message

        requests = fake.requests

    assert text.content == "Scripted answer."
    assert tool.tool_calls[0].function.name == "handover_to_human"
    assert json.loads(tool.tool_calls[0].function.arguments) == {"reason": "asked for a person"}
    assert default.content == fake.default_text
    assert [(r["model"], r["messages"]) for r in requests] == [("gpt-4o-mini", messages)] * 3
    assert requests[0]["tools"] == [HANDOVER]


def test_fake_streams_and_fails_on_request() -> None:
    messages = [{"role": "user", "content": "hi"}]
    with FakeOpenAI() as fake:
        fake.reply("Streamed in pieces.").fail(400, {"error": {"message": "bad input", "type": "invalid"}})
        call = {
            "model": "openai/gpt-4o-mini",
            "api_base": fake.base_url,
            "api_key": "test",
            "messages": messages,
        }

        chunks = list(litellm.completion(**call, stream=True))
        with pytest.raises(litellm.BadRequestError, match="bad input"):
            litellm.completion(**call)

    assert "".join(chunk.choices[0].delta.content or "" for chunk in chunks) == "Streamed in pieces."
    assert fake.requests[0]["stream"] is True
