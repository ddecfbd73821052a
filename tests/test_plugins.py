"""The plugin surface: every hook documented with its exact arguments, and every hook exercised by an
inline plugin registered for the test and unregistered afterwards."""

from __future__ import annotations

import asyncio
import inspect
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from gateway import hookspecs
from gateway.plugin import (
    ConfigError,
    ConnectorSettings,
    Inbound,
    Notifier,
    NotifierSettings,
    Outbound,
    SendResult,
    SignatureInvalid,
    WebhookConnector,
    WebhookRequest,
    hookimpl,
)
from gateway.plugin_host import call_hook, connector_types, plugin_manager
from gateway.web.app import create_app
from tests.conftest import Visitor, chat_channel, run_jobs

README = (Path(__file__).parent.parent / "README.md").read_text()
HOOKS = sorted(name for name, value in inspect.getmembers(hookspecs) if hasattr(value, "baton_spec"))


@pytest.fixture
def registered() -> Iterator[list[object]]:
    plugins: list[object] = []
    yield plugins
    for plugin in plugins:
        plugin_manager().unregister(plugin)


def register(plugins: list[object], plugin: object) -> None:
    plugin_manager().register(plugin)
    plugins.append(plugin)


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_documented_with_its_exact_arguments(hook: str) -> None:
    arguments = ", ".join(inspect.signature(getattr(hookspecs, hook)).parameters)
    assert f"### `{hook}({arguments})`" in README


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_a_test(hook: str) -> None:
    assert f"test_hook_{hook}" in globals()


class CollectingConnector(WebhookConnector):
    """A channel whose 'provider' is this test: shared-secret header in, collected messages out."""

    type = "collecting"
    sent: list[Outbound] = []
    warmed: list[str] = []

    class Settings(ConnectorSettings):
        secret: str

    def verify(self, request: WebhookRequest) -> None:
        if request.headers.get("x-secret") != self.settings.secret:  # type: ignore[attr-defined]
            raise SignatureInvalid("wrong X-Secret")

    def parse(self, request: WebhookRequest) -> list[Any]:
        form = dict(request.form)
        return [Inbound(channel=self.name, sender=form["from"], provider_id=form["id"], text=form["text"])]

    def warm_up(self) -> None:
        CollectingConnector.warmed.append(self.name)

    def send(self, message: Outbound) -> SendResult:
        CollectingConnector.sent.append(message)
        return SendResult(provider_id=f"out-{len(CollectingConnector.sent)}")


class CollectingPlugin:
    @hookimpl
    def register_connectors(self, register: Any) -> None:
        register(CollectingConnector)


def test_hook_register_connectors(registered: list[object], make_deployment: Any) -> None:
    register(registered, CollectingPlugin())
    CollectingConnector.sent.clear()
    CollectingConnector.warmed.clear()
    deployment = make_deployment(channels=[{"name": "collect", "type": "collecting", "secret": "s3"}])
    with TestClient(create_app(deployment)) as client:
        form = {"from": "user-1", "id": "in-1", "text": "How long does shipping take?"}
        assert client.post("/webhooks/collect", data=form).status_code == 403
        assert client.post("/webhooks/collect", data=form, headers={"X-Secret": "s3"}).status_code == 200
        run_jobs(deployment)
        run_jobs(deployment)
    assert CollectingConnector.warmed == ["collect"]  # once per worker, before its first job
    [reply] = CollectingConnector.sent
    assert (reply.recipient, reply.text) == ("user-1", "Delivery takes 2-4 business days.")


def test_two_plugins_cannot_register_the_same_connector_type(registered: list[object]) -> None:
    class Twin:
        @hookimpl
        def register_connectors(self, register: Any) -> None:
            register(type("Webchat2", (WebhookConnector,), {"type": "webchat"}))

    register(registered, Twin())
    with pytest.raises(ConfigError, match="two plugins register type 'webchat'"):
        connector_types()


class RecordingNotifier(Notifier):
    type = "recording"
    received: list[dict[str, Any]] = []

    class Settings(NotifierSettings):
        label: str = ""

    def notify(self, notification: dict[str, Any]) -> None:
        RecordingNotifier.received.append({"label": self.settings.label, **notification})


def test_hook_register_notifiers(registered: list[object], make_deployment: Any) -> None:
    class Plugin:
        @hookimpl
        def register_notifiers(self, register: Any) -> None:
            register(RecordingNotifier)

    register(registered, Plugin())
    RecordingNotifier.received.clear()
    deployment = make_deployment(notifiers=[{"type": "recording", "label": "pager"}])
    with TestClient(create_app(deployment)) as client:
        Visitor(client, chat_channel(deployment)).say("I want to talk to a human")
        run_jobs(deployment)
    [notification] = RecordingNotifier.received
    assert notification["label"] == "pager" and notification["type"] == "handover"
    assert notification["reason"] == "The customer asked for a human"


def test_hook_register_llm_providers(registered: list[object], make_deployment: Any) -> None:
    from gateway.llm import import_litellm

    litellm = import_litellm()

    class Shouting(litellm.CustomLLM):  # type: ignore[misc, name-defined]
        provider = "shouting"

        def completion(self, *args: Any, **kwargs: Any) -> Any:
            question = kwargs["messages"][-1]["content"]
            return litellm.completion(model="gpt-4o-mini", messages=kwargs["messages"],
                                      mock_response=question.upper())

    class Plugin:
        @hookimpl
        def register_llm_providers(self, register: Any) -> None:
            register(Shouting())

    register(registered, Plugin())
    deployment = make_deployment(ai_agent={"model": "shouting/v1"})
    with TestClient(create_app(deployment)) as client:
        visitor = Visitor(client, chat_channel(deployment))
        visitor.say("where is my parcel")
        run_jobs(deployment)
        assert visitor.texts("ai") == ["WHERE IS MY PARCEL"]


def test_hook_baton_notify(registered: list[object], make_deployment: Any) -> None:
    received: list[tuple[str, dict[str, Any]]] = []

    class Plugin:
        @hookimpl
        def baton_notify(self, workspace: str, notification: dict[str, Any]) -> None:
            received.append((workspace, notification))

    register(registered, Plugin())
    deployment = make_deployment()
    with TestClient(create_app(deployment)) as client:
        Visitor(client, chat_channel(deployment)).say("speak to someone please")
        run_jobs(deployment)
    [(workspace, notification)] = received
    assert workspace == deployment.config.workspaces[0].id
    assert notification["type"] == "handover" and notification["route"] == "customer"
    assert re.match(r"^\d+$", notification["conversation"])


def test_hook_baton_archive(registered: list[object], make_deployment: Any) -> None:
    from gateway.work import retention

    archived: list[tuple[str, dict[str, Any]]] = []

    class Plugin:
        @hookimpl
        async def baton_archive(self, workspace: str, conversation: dict[str, Any]) -> None:
            archived.append((workspace, conversation))  # an async hook is awaited before the deletion

    register(registered, Plugin())
    deployment = make_deployment(retention={"closed_days": 1, "archive_dir": ""})
    workspace = deployment.config.workspaces[0].id
    with TestClient(create_app(deployment)) as client:
        visitor = Visitor(client, chat_channel(deployment))
        cid = visitor.say("thanks, bye")["conversation"]
        deployment.store.close(workspace, cid, "agent:alex")
    assert retention.sweep(deployment, "test", now_ms=deployment.store.now_ms() + 2 * 86_400_000) == 1
    [(where, conversation)] = archived
    assert where == workspace and conversation["id"] == cid
    assert [m["text"] for m in conversation["messages"] if m["author"] == "customer"] == ["thanks, bye"]


def test_call_hook_awaits_what_returns_an_awaitable_and_keeps_every_result(registered: list[object]) -> None:
    """One helper calls a hook for every caller (notify jobs, the archive): a sync implementation, an `async def`
    and one returning an awaitable each give their result, all awaited before the call returns."""
    seen: list[str] = []

    class Sync:
        @hookimpl
        def baton_archive(self, workspace: str, conversation: dict[str, Any]) -> str:
            seen.append("sync")
            return f"sync:{workspace}:{conversation['id']}"

    class Async:
        @hookimpl
        async def baton_archive(self, workspace: str, conversation: dict[str, Any]) -> str:
            await asyncio.sleep(0)
            seen.append("async")
            return "async"

    class Awaitable:
        @hookimpl
        def baton_archive(self, workspace: str, conversation: dict[str, Any]) -> Any:
            async def later() -> str:
                seen.append("awaitable")
                return "awaitable"
            return later()

    for plugin in (Sync(), Async(), Awaitable()):
        register(registered, plugin)
    results = call_hook("baton_archive", workspace="w1", conversation={"id": "7"})
    assert sorted(results) == ["async", "awaitable", "sync:w1:7"]
    assert sorted(seen) == ["async", "awaitable", "sync"]
