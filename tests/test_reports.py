"""GET /api/reports: a seeded history whose figures are known by construction, answered exactly as JSON and CSV; a
real conversation counted on the day it started; bad ranges refused with the reason."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from typing import Any

import pytest
from starlette.testclient import TestClient

from gateway import keys, metrics, reports
from gateway.deployment import Deployment
from tests.conftest import Visitor, agent_token, chat_channel, run_jobs, workspace_of

# Three days; on each, "<metric>|<channel>" → count, as the state script keeps them.
HISTORY: dict[str, dict[str, int]] = {
    "2026-11-01": {
        # web: 10 started: 6 resolved by the AI (2 automatically; 1 customer came back), 2 handed over, 1
        # abandoned, 1 still open
        "conversations|web": 10, "ai_resolved|web": 6, "auto_resolved|web": 2, "returned|web": 1,
        "handed_over|web": 2, "handover:customer|web": 1, "handover:model|web": 1, "abandoned|web": 1,
        "open|web": 1,
        # first responses: 5 within 10 s, 4 within a minute, 1 within 5 minutes
        "first_response:1|web": 5, "first_response:3|web": 4, "first_response:5|web": 1,
        "to_assignment:4|web": 2, "to_human_reply:6|web": 2,
        "forms_sent|web": 2, "forms_captured|web": 1,
        "csat:ai:5|web": 3, "csat:ai:4|web": 1, "csat:human:2|web": 1,
        # whatsapp: 4 started: 1 resolved by the AI, 3 handed over after the AI's offer
        "conversations|whatsapp": 4, "ai_resolved|whatsapp": 1, "handed_over|whatsapp": 3,
        "handover:offer|whatsapp": 3, "first_response:2|whatsapp": 4,
        "csat:human:5|whatsapp": 2,
    },
    "2026-11-02": {},  # a quiet day
    "2026-11-03": {
        "conversations|web": 6, "ai_resolved|web": 3, "handed_over|web": 3, "handover:agent|web": 3,
        "first_response:1|web": 6, "resolution:15|web": 1,
    },
}


def seed(deployment: Deployment, history: dict[str, dict[str, int]]) -> None:
    workspace_id = workspace_of(deployment)
    for day, fields in history.items():
        if fields:
            deployment.redis.hset(keys.key(keys.REPORT, workspace_id=workspace_id, day=day), mapping=fields)


@pytest.fixture
def alex(deployment: Deployment) -> dict[str, str]:
    return agent_token(deployment, "alex")


@pytest.fixture
def seeded(deployment: Deployment) -> Deployment:
    channel = chat_channel(deployment)
    history = {day: {field.replace("|web", f"|{channel}"): n for field, n in fields.items()}
               for day, fields in HISTORY.items()}
    seed(deployment, history)
    return deployment


def get(client: TestClient, headers: dict[str, str], **params: str) -> Any:
    response = client.get("/api/reports", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def test_the_seeded_range_answers_its_figures_exactly(client: TestClient, seeded: Deployment,
                                                     alex: dict[str, str]) -> None:
    web = chat_channel(seeded)
    answer = get(client, alex, **{"from": "2026-11-01", "to": "2026-11-03"})
    assert answer["from"] == "2026-11-01" and answer["to"] == "2026-11-03" and answer["channel"] is None
    assert answer["conversations"] == 20
    # AI resolved 10, handed over 8, abandoned 1, open 1 (of 20)
    assert answer["shares"] == {"ai_resolved": 0.5, "handed_over": 0.4, "abandoned": 0.05, "open": 0.05}
    assert sum(answer["shares"].values()) == pytest.approx(1.0, abs=1e-12)
    assert answer["counts"] == {"conversations": 20, "ai_resolved": 10, "handed_over": 8, "abandoned": 1, "open": 1,
                                "auto_resolved": 2, "returned": 1, "forms_sent": 2, "forms_captured": 1}
    assert answer["channels"] == {web: 16, "whatsapp": 4}
    assert answer["ai_resolution_rate"] == 0.5 and answer["durable"] == 9
    assert answer["durable_resolution_rate"] == 0.45 and answer["handover_rate"] == 0.4
    assert answer["handover_reasons"] == {"agent": 3, "customer": 1, "model": 1, "offer": 3}
    first = answer["times"]["first_response"]
    # 11 within 10 s, 4 within 30 s, 4 within 60 s, 1 within 300 s: the 10th of 20 is within 10 s, the 18th 60 s
    assert first["count"] == 20 and first["p50"] == 10 and first["p90"] == 60
    assert first["buckets"][:5] == [11, 4, 4, 0, 1]
    assert answer["times"]["to_assignment"] == {"p50": 120, "p90": 120, "count": 2,
                                                "buckets": [0, 0, 0, 2] + [0] * 11}
    assert answer["times"]["to_human_reply"]["p50"] == 600
    assert answer["times"]["resolution"]["p50"] is None  # past the last bound (7 days): no upper bound to give
    assert answer["csat"]["ai"] == {"responses": 4, "average": 4.75, "satisfied": 1.0, "ratings": [0, 0, 0, 1, 3]}
    assert answer["csat"]["human"] == {"responses": 3, "average": 4.0, "satisfied": 2 / 3, "ratings": [0, 1, 0, 0, 2]}
    assert answer["forms"] == {"sent": 2, "captured": 1}
    assert [day["day"] for day in answer["series"]] == ["2026-11-01", "2026-11-02", "2026-11-03"]
    assert [day["conversations"] for day in answer["series"]] == [14, 0, 6]
    assert answer["series"][1]["shares"] == {"ai_resolved": 0.0, "handed_over": 0.0, "abandoned": 0.0, "open": 0.0}
    # 7, 5, 1 and 1 of 14, in millionths adding up to a million: the largest remainders take the leftover units
    assert answer["series"][0]["shares"] == {"ai_resolved": 0.5, "handed_over": 0.357143, "abandoned": 0.071429,
                                             "open": 0.071428}
    assert sum(answer["series"][0]["shares"].values()) == pytest.approx(1.0, abs=1e-12)


def test_one_channel_s_figures(client: TestClient, seeded: Deployment, alex: dict[str, str]) -> None:
    answer = get(client, alex, **{"from": "2026-11-01", "to": "2026-11-03", "channel": "whatsapp"})
    assert answer["channel"] == "whatsapp" and answer["conversations"] == 4
    assert answer["shares"] == {"ai_resolved": 0.25, "handed_over": 0.75, "abandoned": 0.0, "open": 0.0}
    assert answer["handover_reasons"] == {"offer": 3} and answer["csat"]["human"]["ratings"] == [0, 0, 0, 0, 2]


def test_the_csv_has_a_row_per_day_and_the_total(client: TestClient, seeded: Deployment,
                                                 alex: dict[str, str]) -> None:
    response = client.get("/api/reports", params={"from": "2026-11-01", "to": "2026-11-03", "format": "csv"},
                          headers=alex)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert 'filename="baton-report-2026-11-01-2026-11-03.csv"' in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [row["day"] for row in rows] == ["2026-11-01", "2026-11-02", "2026-11-03", "total"]
    total = rows[-1]
    assert {name: total[name] for name in ("conversations", "ai_resolved", "handed_over", "abandoned", "open",
                                           "durable", "ai_resolution_rate", "durable_resolution_rate")} == {
        "conversations": "20", "ai_resolved": "10", "handed_over": "8", "abandoned": "1", "open": "1",
        "durable": "9", "ai_resolution_rate": "0.5", "durable_resolution_rate": "0.45"}
    assert total["first_response_p50_s"] == "10" and total["first_response_p90_s"] == "60"
    assert total["resolution_p50_s"] == "" and total["csat_ai_average"] == "4.75"
    assert rows[1]["conversations"] == "0" and rows[1]["csat_ai_average"] == ""
    assert list(rows[0]) == list(reports.CSV_COLUMNS)


def test_a_real_conversation_counts_on_the_day_it_started(client: TestClient, deployment: Deployment,
                                                          visitor: Visitor, alex: dict[str, str]) -> None:
    visitor.say("What are your opening hours?")
    run_jobs(deployment)
    visitor.say("transfer to agent")
    run_jobs(deployment)
    other = Visitor(client, chat_channel(deployment))
    other.say("What are your opening hours?")
    run_jobs(deployment)
    answer = get(client, alex)  # the last 30 days, to today
    today = datetime.now(UTC).date()
    assert answer["to"] == today.isoformat() and len(answer["series"]) == 30
    assert answer["conversations"] == 2
    assert answer["shares"] == {"ai_resolved": 0.0, "handed_over": 0.5, "abandoned": 0.0, "open": 0.5}
    assert answer["handover_reasons"] == {"customer": 1}
    assert answer["times"]["first_response"]["count"] == 2
    assert answer["series"][-1]["conversations"] == 2 and answer["series"][0]["conversations"] == 0


@pytest.mark.parametrize(("params", "reason"), [
    ({"from": "2026-11-03", "to": "2026-11-01"}, "is after"),
    ({"from": "2026-13-01"}, "must be a date"),
    ({"to": "yesterday"}, "must be a date"),
    ({"to": ""}, "must be a date"),
    ({"from": "2020-01-01", "to": "2026-01-01"}, "at most 731 days"),
    ({"channel": "telegram"}, "no channel 'telegram' in this workspace"),
    ({"format": "xml"}, "json or csv"),
])
def test_a_bad_range_is_400_with_the_reason(client: TestClient, deployment: Deployment, alex: dict[str, str],
                                            params: dict[str, str], reason: str) -> None:
    response = client.get("/api/reports", params=params, headers=alex)
    assert response.status_code == 400 and reason in response.json()["error"], response.text


def test_reports_need_an_agent(client: TestClient, seeded: Deployment) -> None:
    assert client.get("/api/reports").status_code == 401
    assert client.get("/api/reports", headers={"Authorization": "Bearer nope"}).status_code == 401


def test_parse_range_defaults_to_the_last_30_days() -> None:
    span = reports.parse_range(None, None, date(2026, 3, 1))
    assert (span.first, span.last, len(span.days)) == (date(2026, 1, 31), date(2026, 3, 1), 30)


# --- the widget's rating -----------------------------------------------------------------------------------------

def test_a_visitor_rates_their_closed_conversation(client: TestClient, deployment: Deployment, visitor: Visitor,
                                                  alex: dict[str, str]) -> None:
    channel = chat_channel(deployment)
    cid = visitor.say("What are your opening hours?")["conversation"]
    run_jobs(deployment)
    early = client.post(f"/webchat/{channel}/rating", json={"rating": 5}, headers=visitor.headers)
    assert early.status_code == 409 and "still open" in early.json()["error"]
    assert client.post(f"/api/conversations/{cid}/close", headers=alex).status_code == 200
    rated = client.post(f"/webchat/{channel}/rating", json={"rating": 4, "comment": " Quick! "},
                        headers=visitor.headers)
    assert rated.status_code == 200 and rated.json() == {"conversation": cid, "rating": 4}
    shown = client.get(f"/api/conversations/{cid}", headers=alex).json()["conversation"]
    assert shown["csat"] == 4 and shown["csat_by"] == "ai" and shown["csat_comment"] == "Quick!"
    assert get(client, alex)["csat"]["ai"] == {"responses": 1, "average": 4.0, "satisfied": 1.0,
                                               "ratings": [0, 0, 0, 1, 0]}


@pytest.mark.parametrize(("body", "reason"), [
    ({"rating": 0}, "from 1 to 5"), ({"rating": 6}, "from 1 to 5"), ({"rating": "5"}, "from 1 to 5"),
    ({"rating": True}, "from 1 to 5"), ({"rating": 3, "comment": "x" * 1001}, "1,000 characters"),
    ({"rating": 3, "stars": 3}, "unknown field"),
])
def test_a_bad_rating_is_400(client: TestClient, deployment: Deployment, visitor: Visitor, body: dict[str, Any],
                             reason: str) -> None:
    response = client.post(f"/webchat/{chat_channel(deployment)}/rating", json=body, headers=visitor.headers)
    assert response.status_code == 400 and reason in response.json()["error"]


def test_a_rating_needs_the_visitor_s_session(client: TestClient, deployment: Deployment) -> None:
    assert client.post(f"/webchat/{chat_channel(deployment)}/rating", json={"rating": 5}).status_code == 401


def test_the_counters_are_prometheus_metrics_too(client: TestClient, deployment: Deployment, visitor: Visitor) -> None:
    visitor.say("What are your opening hours?")
    run_jobs(deployment)
    visitor.say("transfer to agent")
    run_jobs(deployment)
    text = metrics.exposition(deployment)[0].decode()
    channel, workspace = chat_channel(deployment), workspace_of(deployment)

    def value(name: str, **labels: str) -> float:
        wanted = {"channel": channel, "workspace": workspace, **labels}
        for line in text.splitlines():
            if line.startswith(name + "{"):
                found = dict(part.split("=", 1) for part in line[len(name) + 1:line.index("}")].split(","))
                if {k: v.strip('"') for k, v in found.items()} == wanted:
                    return float(line.rsplit(" ", 1)[1])
        raise AssertionError(f"no {name} {wanted}")

    assert value("baton_report_conversations_total") == 1
    assert value("baton_report_handovers_total", route="customer") == 1
    assert value("baton_report_outcomes_total", outcome="handed_over") == 1
    timed = [line for line in text.splitlines()
             if line.startswith("baton_report_times_total{") and 'measure="first_response"' in line
             and f'workspace="{workspace}"' in line]
    assert sum(float(line.rsplit(" ", 1)[1]) for line in timed) == 1  # one first response, in its bucket
