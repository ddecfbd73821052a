"""/healthz says the process answers; /readyz says the deployment can serve: Redis writable, a worker alive and
checking the no-human timers — 503 with the reason otherwise."""

from __future__ import annotations

import time

from starlette.testclient import TestClient

from gateway import keys
from gateway.deployment import Deployment
from gateway.web.app import create_app


def beat(deployment: Deployment, name: str, timers_age_ms: int) -> None:
    now = int(time.time() * 1000)
    queue = deployment.config.queue
    deployment.redis.hset(keys.key(keys.WORKER, queue=queue, name=name), mapping={"timers_at": now - timers_age_ms})
    deployment.redis.zadd(keys.key(keys.WORKERS, queue=queue), {name: now})


def test_ready_only_with_a_live_worker_checking_the_timers(deployment: Deployment) -> None:
    with TestClient(create_app(deployment)) as client:
        assert client.get("/healthz").json()["status"] == "ok"
        nobody = client.get("/readyz")
        assert nobody.status_code == 503 and "no worker" in nobody.json()["reason"]
        beat(deployment, "w1", timers_age_ms=60_000)  # alive, but its timer loop is stuck
        stuck = client.get("/readyz")
        assert stuck.status_code == 503 and "timers" in stuck.json()["reason"]
        beat(deployment, "w2", timers_age_ms=100)
        ready = client.get("/readyz")
        assert ready.status_code == 200 and ready.json() == {"status": "ready", "workers": 2}


def test_not_ready_without_redis(deployment: Deployment) -> None:
    import yaml

    from gateway.config import parse_config
    from tests.conftest import config_tree, free_port

    lost = Deployment.build(parse_config(yaml.safe_dump(config_tree("lost"))), f"redis://127.0.0.1:{free_port()}/0")
    with TestClient(create_app(lost)) as client:
        assert client.get("/healthz").status_code == 200  # the process answers
        response = client.get("/readyz")
        assert response.status_code == 503 and "Redis" in response.json()["reason"]
    lost.close()
