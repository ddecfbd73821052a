"""A Redis failure is answered 503 saying which failure it is (not "storage unavailable" for every one), and a client
that goes away mid-body costs one throttled line, never a traceback."""

from __future__ import annotations

import logging
import socket
import time
import uuid
from pathlib import Path

import httpx
import pytest
import redis
import yaml
from starlette.testclient import TestClient

from gateway.config import parse_config
from gateway.deployment import Deployment
from gateway.redis_server import describe_error, passing
from gateway.web.app import create_app
from tests.conftest import LiveServer, Visitor, agent_token, chat_channel, config_tree, workspace_of
from tests.redis_proxy import RedisProxy


@pytest.mark.parametrize(("error", "says", "passes"), [
    (redis.exceptions.OutOfMemoryError("command not allowed when used memory > 'maxmemory'."), "out of memory", True),
    (redis.ResponseError("ERR Error running script (call to f_1): @user_script:77: OOM command not allowed"),
     "out of memory", True),
    (redis.ResponseError("MISCONF Errors writing to the AOF file: No space left on device"), "to disk", True),
    (redis.ReadOnlyError("You can't write against a read only replica."), "read-only replica", True),
    (redis.ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value"), "shape", False),
    (redis.ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused."), "not reachable", True),
    (redis.ResponseError("ERR unknown command 'FOO'"), "refused the command", False),
])
def test_each_redis_failure_is_named(error: Exception, says: str, passes: bool) -> None:
    assert says in describe_error(error)
    assert passing(error) is passes


def test_data_of_another_shape_is_503_saying_so(client: TestClient, deployment: Deployment, visitor: Visitor) -> None:
    cid = visitor.say("hello")["conversation"]
    history = f"baton:{workspace_of(deployment)}:conv:{cid}:messages"
    deployment.redis.delete(history)
    deployment.redis.xadd(history, {"author": "customer", "text": "hello"})  # as an early release stored it
    answer = client.get(f"/api/conversations/{cid}", headers=agent_token(deployment))
    assert answer.status_code == 503
    assert "not of the shape this release reads" in answer.json()["error"]
    assert "WRONGTYPE" in answer.json()["error"]


def test_redis_out_of_memory_is_503_saying_so(redis_url: str, tmp_path: Path) -> None:
    with RedisProxy(redis_url) as proxy:
        tree = config_tree(f"t{uuid.uuid4().hex[:10]}")
        deployment = Deployment.build(parse_config(yaml.safe_dump(tree), base_dir=tmp_path), proxy.url)
        with TestClient(create_app(deployment)) as client:
            visitor = Visitor(client, chat_channel(deployment))
            proxy.arm(b"inbound", "oom")
            sent = client.post(f"/webchat/{visitor.channel}/messages", json={"text": "hello", "client_id": "c1"},
                               headers=visitor.headers)
            assert sent.status_code == 503 and sent.headers["retry-after"] == "1"
            assert "out of memory" in sent.json()["error"]
            assert visitor.say("hello", client_id="c1")["duplicate"] is False  # the retry is recorded
        deployment.close()


def test_a_client_that_goes_away_mid_body_costs_no_traceback(live_server: LiveServer, deployment: Deployment,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    port = int(live_server.url.rsplit(":", 1)[1])
    channel = chat_channel(deployment)
    token = httpx.post(f"{live_server.url}/webchat/{channel}/sessions").json()["token"]
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(f"POST /webchat/{channel}/messages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
                         "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"text\": \"hel".encode())
            time.sleep(0.2)
    time.sleep(0.5)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]
    gone = [r for r in caplog.records if "disconnected before sending its whole body" in r.getMessage()]
    assert len(gone) == 1  # three clients, one throttled line
