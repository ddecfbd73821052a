"""/metrics: the Prometheus text an operator scrapes, after a short run; who may read it."""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from gateway.deployment import Deployment
from gateway.web.app import create_app
from tests.conftest import LiveServer, Visitor, agent_token, chat_channel, run_jobs


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_metrics_count_what_happened_and_the_work_waiting(make_deployment: Callable[..., Deployment]) -> None:
    import httpx

    deployment = make_deployment()
    workspace = deployment.config.workspaces[0].id
    channel = chat_channel(deployment)
    with LiveServer(deployment) as server, httpx.Client(base_url=server.url) as http:
        alex = agent_token(deployment, "alex")
        visitor = Visitor(http, channel)  # type: ignore[arg-type]
        visitor.say("What are your opening hours?")
        run_jobs(deployment)
        cid = visitor.say("I want to talk to a human")["conversation"]
        run_jobs(deployment)
        assert http.post(f"/api/conversations/{cid}/assign", json={"assignee": "me"}, headers=alex).is_success
        Visitor(http, channel).say("hello?")  # type: ignore[arg-type]  # waits, unanswered: one pending turn
        response = http.get("/metrics")  # from this machine
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    found = samples(response.text)
    assert found[("baton_webhooks_total", (("channel", channel), ("outcome", "accepted")))] >= 3
    assert found[("baton_handovers_total", (("route", "customer"),))] >= 1
    assert found[("baton_time_to_assignment_seconds_count", ())] >= 1
    assert found[("baton_queue_depth", (("queue", "turns"), ("workspace", workspace)))] == 1
    assert found[("baton_queue_oldest_seconds", (("queue", "rq"), ("workspace", "")))] >= 0  # the notifications
    assert ("baton_ack_seconds_count", (("channel", channel),)) in found
    assert any(name == "baton_model_seconds_count" for name, _ in found)


def test_metrics_need_the_token_from_elsewhere(make_deployment: Callable[..., Deployment]) -> None:
    open_one = make_deployment()
    with TestClient(create_app(open_one)) as client:  # TestClient's address is not this machine's
        assert client.get("/metrics").status_code == 403
    guarded = make_deployment(metrics_token="scrape-me-0123456789")
    with TestClient(create_app(guarded)) as client:
        assert client.get("/metrics").status_code == 403
        assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 403
        assert client.get("/metrics", headers={"Authorization": "Bearer scrape-me-0123456789"}).status_code == 200


def test_a_local_request_refused_for_want_of_the_token_is_told_so_not_that_it_is_not_local(
        make_deployment: Callable[..., Deployment]) -> None:
    import httpx

    from tests.conftest import LiveServer

    with LiveServer(make_deployment(metrics_token="scrape-me-0123456789")) as live:  # a real socket on 127.0.0.1
        missing = httpx.get(f"{live.url}/metrics")
        wrong = httpx.get(f"{live.url}/metrics", headers={"Authorization": "Bearer wrong"})
        assert httpx.get(f"{live.url}/metrics", headers={"Authorization": "Bearer scrape-me-0123456789"}).is_success
    assert missing.status_code == wrong.status_code == 403
    assert missing.json()["error"] == ("metrics need 'Authorization: Bearer <metrics_token>': the token is missing "
                                       "(with metrics_token set, requests from this machine need it too)")
    assert "the token is not metrics_token" in wrong.json()["error"]
    with LiveServer(make_deployment()) as live:
        assert httpx.get(f"{live.url}/metrics").is_success
        proxied = httpx.get(f"{live.url}/metrics", headers={"X-Forwarded-For": "203.0.113.9"})
    assert proxied.status_code == 403 and "came through a proxy" in proxied.json()["error"]


def test_a_turn_is_timed_under_what_it_did(make_deployment: Callable[..., Deployment]) -> None:
    from prometheus_client import REGISTRY

    from gateway.work import worker
    from gateway.work.dispatch import Leases

    def count(outcome: str) -> float:
        return REGISTRY.get_sample_value("baton_turn_seconds_count", {"outcome": outcome}) or 0.0

    deployment = make_deployment()
    before = {outcome: count(outcome) for outcome in ("answered", "handed_over", "nothing")}
    runner = worker.turn_runner(deployment, Leases(deployment.redis, "metrics-test"))
    with TestClient(create_app(deployment)) as client:
        visitor = Visitor(client, chat_channel(deployment))
        cid = visitor.say("What are your opening hours?")["conversation"]
        runner.work(deployment.config.workspaces[0].id, cid)
        visitor.say("I want to talk to a human")
        runner.work(deployment.config.workspaces[0].id, cid)
        runner.work(deployment.config.workspaces[0].id, cid)  # nothing new
    runner.pool.shutdown()
    assert count("answered") == before["answered"] + 1
    assert count("handed_over") == before["handed_over"] + 1
    assert count("nothing") == before["nothing"] + 1


def test_a_turns_words_map_to_a_few_outcomes() -> None:
    from gateway.work.worker import turn_outcome

    assert [turn_outcome(words) for words in ("answered", "handed over (customer)", "closed", "nothing new",
                                              "nothing (owned by agent:alex)", "dropped (stale)", "suppressed (x)",
                                              "no handover (x)", "captured contact details")] == [
        "answered", "handed_over", "closed", "nothing", "nothing", "dropped", "dropped", "dropped", "contact_form"]


def test_the_oldest_notification_job_has_an_age(make_deployment: Callable[..., Deployment]) -> None:
    from gateway.metrics import _oldest_job_age

    deployment = make_deployment()
    queue = deployment.queue
    assert _oldest_job_age(queue, time.time()) == 0.0
    queue.enqueue("builtins.len", [])
    assert 9.5 < _oldest_job_age(queue, time.time() + 10) < 10.5
