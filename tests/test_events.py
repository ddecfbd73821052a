"""GET /api/events over a real server: every kind of inbox event arrives live, a reconnect with the last
event id replays exactly what came after, and the stream is confined to the agent's own workspace."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from gateway.deployment import Deployment
from gateway.handover.fallback import fire_due
from gateway.web import sse
from gateway.web.auth import create_agent, revoke_agent
from tests.conftest import KNOWLEDGE, LiveServer, agent_token, chat_channel, run_jobs, workspace_of

TIMEOUT = 0.2  # seconds: the no-human fallback's deadline here
HOURS = "We are open Monday to Friday, 9:00 to 17:00."

Frame = dict[str, Any]  # {"id", "event", "data"}


class EventStream:
    """Reads /api/events in a thread until `until(frames)` holds (or the read times out)."""

    def __init__(self, url: str, headers: dict[str, str], until: Callable[[list[Frame]], bool],
                 last_event_id: str | None = None, params: dict[str, str] | None = None) -> None:
        self.frames: list[Frame] = []
        self.keepalives = 0
        self.error: BaseException | None = None
        self.ready = threading.Event()
        if last_event_id is not None:
            headers = {**headers, "Last-Event-ID": last_event_id}
        self.thread = threading.Thread(target=self._read, args=(url, headers, params or {}, until), daemon=True)
        self.thread.start()
        assert self.ready.wait(timeout=10), "the event stream did not open"
        assert self.error is None, self.error

    def _read(self, url: str, headers: dict[str, str], params: dict[str, str],
              until: Callable[[list[Frame]], bool]) -> None:
        frame: Frame = {}
        try:
            # a read waits out the server's keepalive interval (a loaded machine can be quiet that long between events)
            with httpx.stream("GET", url, headers=headers, params=params,
                              timeout=httpx.Timeout(10, read=sse.KEEPALIVE_S + 15)) as response:
                assert response.status_code == 200, response.read()
                assert response.headers["content-type"].startswith("text/event-stream")
                for line in response.iter_lines():
                    self.ready.set()  # the first line is sent once the stream's start is fixed
                    if line.startswith(("id: ", "event: ", "data: ")):
                        name, _, value = line.partition(": ")
                        frame[name] = json.loads(value) if name == "data" else value
                    elif line.startswith(":"):
                        self.keepalives += 1
                    elif line == "" and "data" in frame:
                        self.frames.append(frame)
                        frame = {}
                        if until(self.frames):
                            return
        except BaseException as exc:  # noqa: BLE001 - reported by result()
            self.error = exc
        finally:
            self.ready.set()

    def result(self) -> list[Frame]:
        self.thread.join(timeout=sse.KEEPALIVE_S + 20)
        assert not self.thread.is_alive(), "the event stream did not end"
        if self.error is not None:
            raise AssertionError(f"reading the event stream failed: {self.error!r}") from self.error
        return self.frames


def saw(kind: str, **match: Any) -> Callable[[list[Frame]], bool]:
    return lambda frames: any(f["data"]["type"] == kind and all(f["data"].get(k) == v for k, v in match.items())
                              for f in frames)


def at_least(count: int) -> Callable[[list[Frame]], bool]:
    return lambda frames: len(frames) >= count


def of_type(frames: list[Frame], kind: str) -> list[dict[str, Any]]:
    return [f["data"] for f in frames if f["data"]["type"] == kind]


def redis_ms(deployment: Deployment) -> int:
    seconds, micros = deployment.redis.time()
    return int(seconds) * 1000 + int(micros) // 1000


@pytest.fixture
def deployment(make_deployment: Callable[..., Deployment]) -> Deployment:
    return make_deployment(handover={"no_human_timeout": TIMEOUT})


@pytest.fixture
def server(deployment: Deployment) -> Iterator[LiveServer]:
    with LiveServer(deployment) as live:
        yield live


@pytest.fixture
def http(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        yield client


@pytest.fixture
def alex(deployment: Deployment) -> dict[str, str]:
    return agent_token(deployment, "alex")


def new_visitor(http: httpx.Client, channel: str) -> dict[str, str]:
    response = http.post(f"/webchat/{channel}/sessions")
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


def say(http: httpx.Client, channel: str, visitor: dict[str, str], text: str) -> str:
    body = {"text": text, "client_id": uuid.uuid4().hex}
    response = http.post(f"/webchat/{channel}/messages", json=body, headers=visitor)
    assert response.status_code == 201, response.text
    return str(response.json()["conversation"])


def ok(response: httpx.Response) -> Any:
    assert response.status_code < 300, response.text
    return response.json()


def test_every_kind_of_inbox_event_arrives_live(deployment: Deployment, server: LiveServer, http: httpx.Client,
                                                alex: dict[str, str]) -> None:
    channel = chat_channel(deployment)
    stream = EventStream(f"{server.url}/api/events", alex, until=saw("conversation.closed"))
    visitor = new_visitor(http, channel)
    cid = say(http, channel, visitor, "What are your opening hours?")
    run_jobs(deployment)
    say(http, channel, visitor, "support")
    run_jobs(deployment)
    deadline = int(deployment.store.conversation(workspace_of(deployment), cid)["waiting_since"]) + TIMEOUT * 1000
    while redis_ms(deployment) <= deadline:
        time.sleep(0.01)
    assert [f["conversation"] for f in fire_due(deployment)] == [cid]
    ok(http.post(f"/webchat/{channel}/contact", json={"name": "Maria", "email": "maria@example.com"},
                 headers=visitor))
    ok(http.post(f"/api/conversations/{cid}/assign", json={"assignee": "me"}, headers=alex))
    ok(http.post(f"/api/conversations/{cid}/messages", json={"text": "Hi Maria, Alex here."}, headers=alex))
    ok(http.post(f"/api/conversations/{cid}/close", headers=alex))
    frames = stream.result()

    assert all(f["event"] == f["data"]["type"] for f in frames)
    ids = [f["id"] for f in frames]
    assert len(set(ids)) == len(ids) and ids == sorted(ids, key=lambda i: tuple(map(int, i.split("-"))))
    assert all(f["data"].get("conversation") == cid for f in frames)
    [created] = of_type(frames, "conversation.created")
    assert created["owner"] == "ai" and created["channel"] == channel
    messages = [(m["author"], m["kind"], m["text"]) for m in of_type(frames, "message.created")]
    assert ("customer", "message", "What are your opening hours?") in messages
    assert ("ai", "message", HOURS) in messages
    assert ("agent", "message", "Hi Maria, Alex here.") in messages
    [handover] = of_type(frames, "conversation.handover")
    assert handover["reason"] == "The customer asked for a human"
    assert "support" in handover["summary"] and "opening hours" in handover["summary"]
    [form] = of_type(frames, "contact.form_sent")
    assert form["channel"] == channel
    [captured] = of_type(frames, "contact.captured")
    assert (captured["name"], captured["email"]) == ("Maria", "maria@example.com") and captured["contact"]
    [assigned] = of_type(frames, "conversation.assigned")
    assert (assigned["owner"], assigned["previous"], assigned["actor"]) == ("agent:alex", "none", "agent:alex")
    [closed] = of_type(frames, "conversation.closed")
    assert closed["actor"] == "agent:alex"
    order = [f["data"]["type"] for f in frames if f["data"]["type"] != "message.created"]
    assert order == ["conversation.created", "conversation.handover", "contact.form_sent", "contact.captured",
                     "conversation.assigned", "conversation.closed"]


def test_a_reconnect_with_the_last_event_id_replays_exactly_what_came_after_then_continues_live(
        deployment: Deployment, server: LiveServer, http: httpx.Client, alex: dict[str, str]) -> None:
    channel = chat_channel(deployment)
    url = f"{server.url}/api/events"
    visitor = new_visitor(http, channel)
    live = EventStream(url, alex, until=saw("conversation.handover"))
    cid = say(http, channel, visitor, "What are your opening hours?")
    run_jobs(deployment)
    say(http, channel, visitor, "transfer to agent")
    run_jobs(deployment)
    everything = live.result()
    assert len(everything) >= 5
    for cut in (0, 2, len(everything) - 2):
        for how in ("header", "query"):  # EventSource sends the header; a page reload can use the query
            last, rest = everything[cut], everything[cut + 1:]
            replay = EventStream(url, alex, until=at_least(len(rest)),
                                 last_event_id=last["id"] if how == "header" else None,
                                 params={"last_event_id": last["id"]} if how == "query" else None)
            assert replay.result() == rest, (cut, how)

    # Caught up to the newest event, the reconnected stream goes on with new ones: no gap, no repeat.
    resumed = EventStream(url, alex, until=saw("conversation.assigned"), last_event_id=everything[2]["id"])
    ok(http.post(f"/api/conversations/{cid}/assign", json={"assignee": "me"}, headers=alex))
    frames = resumed.result()
    assert frames[:len(everything) - 3] == everything[3:]
    assert [f["data"]["type"] for f in frames[len(everything) - 3:]] == [
        "message.created", "message.created", "conversation.assigned"]  # the note, the notice, the event
    assert len({f["id"] for f in frames}) == len(frames)


def test_a_new_stream_starts_with_what_happens_after_it_opened_and_misses_none_of_it(
        deployment: Deployment, server: LiveServer, http: httpx.Client, alex: dict[str, str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Even when finding where "now" is in the stream is slow, nothing after the stream's first line is lost."""
    slow = aioredis.Redis.xrevrange

    async def slow_xrevrange(self: aioredis.Redis, *args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(0.3)
        return await slow(self, *args, **kwargs)

    monkeypatch.setattr(aioredis.Redis, "xrevrange", slow_xrevrange)
    channel = chat_channel(deployment)
    earlier = say(http, channel, new_visitor(http, channel), "What are your opening hours?")
    stream = EventStream(f"{server.url}/api/events", alex, until=saw("conversation.created"))
    later = say(http, channel, new_visitor(http, channel), "How long does shipping take?")
    frames = stream.result()
    assert {f["data"]["conversation"] for f in frames} == {later} != {earlier}


def test_an_idle_stream_gets_keepalives_and_still_delivers_what_comes_later(
        deployment: Deployment, alex: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Proxies drop silent connections: an idle stream sends a comment every KEEPALIVE_S (here 0.5 s, to be quick),
    and the event that finally comes still arrives."""
    monkeypatch.setattr(sse, "KEEPALIVE_S", 0.5)
    with LiveServer(deployment) as server, httpx.Client(base_url=server.url, timeout=10) as http:
        stream = EventStream(f"{server.url}/api/events", alex, until=saw("conversation.created"))
        time.sleep(2.0)
        channel = chat_channel(deployment)
        cid = say(http, channel, new_visitor(http, channel), "hello")
        assert [f["data"]["conversation"] for f in stream.result()] == [cid]
    assert stream.keepalives >= 1


def test_an_agent_of_another_workspace_sees_none_of_its_events(make_deployment: Callable[..., Deployment]) -> None:
    ids = [f"w{uuid.uuid4().hex[:10]}" for _ in range(2)]
    deployment = make_deployment(workspaces=[
        {"id": ws, "channels": [{"name": f"{ws}-chat", "type": "webchat"}],
         "ai_agent": {"name": "Lumi", "knowledge": {"entries": KNOWLEDGE}}} for ws in ids])
    tokens = [{"Authorization": f"Bearer {create_agent(deployment.redis, ws, 'alex', 'Alex')}"} for ws in ids]
    with LiveServer(deployment) as server, httpx.Client(base_url=server.url, timeout=10) as http:
        url = f"{server.url}/api/events"
        mine = EventStream(url, tokens[0], until=saw("message.created", author="ai"))
        theirs = EventStream(url, tokens[1], until=saw("conversation.created"))
        first = say(http, f"{ids[0]}-chat", new_visitor(http, f"{ids[0]}-chat"), "What are your opening hours?")
        run_jobs(deployment)
        second = say(http, f"{ids[1]}-chat", new_visitor(http, f"{ids[1]}-chat"), "hello")  # ends `theirs`
        assert {f["data"]["conversation"] for f in mine.result()} == {first}
        assert [(f["data"]["type"], f["data"]["conversation"]) for f in theirs.result()] == [
            ("conversation.created", second)]
        # Catching up from the very start does not reach into the other workspace either.
        # (the team's events, agent.created and agent.presence, name an agent of this workspace, not a channel)
        replay = EventStream(url, tokens[1], until=at_least(3), last_event_id="0")
        frames = replay.result()
        team = [f["data"] for f in frames if f["data"]["type"].startswith("agent.")]
        channels = {f["data"]["channel"] for f in frames if not f["data"]["type"].startswith("agent.")}
        assert channels == {f"{ids[1]}-chat"}
        assert {event["agent"] for event in team} <= {"alex"}


def test_events_need_a_valid_agent_token_of_a_workspace_served_here(
        make_deployment: Callable[..., Deployment], deployment: Deployment, server: LiveServer) -> None:
    url = f"{server.url}/api/events"
    assert httpx.get(url).status_code == 401
    assert httpx.get(url, headers={"Authorization": "Bearer nonsense"}).status_code == 401
    assert httpx.get(url, params={"token": "x"}).status_code == 401
    stranger = agent_token(make_deployment(), "mallory", admin=True)  # same Redis, another deployment
    assert httpx.get(url, headers=stranger).status_code == 401
    headers = agent_token(deployment, "alex")
    revoke_agent(deployment.redis, workspace_of(deployment), "alex")
    assert httpx.get(url, headers=headers).status_code == 401


@pytest.mark.parametrize("last", ["١", "1-²", "1-", "99999999999999999999", "1-99999999999999999999", "x"])
def test_a_malformed_last_event_id_is_400_before_the_stream_opens(server: LiveServer, alex: dict[str, str],
                                                                  last: str) -> None:
    response = httpx.get(f"{server.url}/api/events", params={"last_event_id": last}, headers=alex, timeout=5)
    assert response.status_code == 400 and "event id" in response.json()["error"]


def test_a_malformed_last_event_id_in_the_url_is_400_beside_a_valid_header(server: LiveServer,
                                                                           alex: dict[str, str]) -> None:
    response = httpx.get(f"{server.url}/api/events", params={"last_event_id": "x"},
                         headers={**alex, "Last-Event-ID": "0"}, timeout=5)
    assert response.status_code == 400 and "event id" in response.json()["error"]
