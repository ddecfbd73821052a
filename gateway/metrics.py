"""What an operator watches, in the Prometheus text format at /metrics (names prefixed `baton_`).

Counters and histograms are kept by each process; `baton serve` gives its children one directory for them
(prometheus-client's multiprocess mode), so any gateway's /metrics adds up every process of the machine. Queue
depths and ages are read from Redis when scraped, so they are the deployment's, whichever gateway answers.
/metrics answers requests from this machine only, unless `metrics_token` is set: then a bearer token is needed.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    start_http_server,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import REGISTRY, Collector

from gateway import keys, reports

LATENCY = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
SLOW = (0.05, 0.1, 0.25, 0.5, 1, 1.5, 2, 3, 5, 10, 20, 30, 60)
WAITS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600)

WEBHOOKS = Counter("baton_webhooks_total", "Inbound customer messages and provider reports, by channel and outcome",
                   ["channel", "outcome"])
ACK = Histogram("baton_ack_seconds", "Time to acknowledge a webhook or a webchat message", ["channel"],
                buckets=LATENCY)
TURNS = Histogram("baton_turn_seconds", "AI turns, from taking the conversation to committing, by what they did "
                  "(answered, handed_over, closed, contact_form, nothing, dropped, error)", ["outcome"],
                  buckets=SLOW)
MODEL = Histogram("baton_model_seconds", "Model calls", ["model"], buckets=SLOW)
HANDOVERS = Counter("baton_handovers_total", "Conversations handed to humans, by route", ["route"])
ASSIGNED_AFTER = Histogram("baton_time_to_assignment_seconds", "From a handover to a human taking the conversation",
                           buckets=WAITS)
HUMAN_REPLY_AFTER = Histogram("baton_time_to_human_reply_seconds", "From the start of a response target (a handover: "
                              "first; a customer's message to a chat a human answers: next) to the human's reply, by "
                              "target and assignment mode", ["target", "mode"], buckets=WAITS)
REMINDERS = Counter("baton_waiting_reminders_total", "Reminders that a handed-over chat still waits for someone to "
                    "take it, and escalations to the admins", ["kind"])
SLA_BREACHES = Counter("baton_sla_breaches_total", "Response targets missed, by target (first, next)", ["target"])
FORMS = Counter("baton_contact_forms_total", "Contact forms sent, and details captured", ["event"])
RESOLVED = Counter("baton_conversations_closed_total", "Closed conversations: resolved by the AI alone, or handed over",
                   ["by"])
AUTO_RESOLVED = Counter("baton_conversations_auto_resolved_total", "AI conversations resolved automatically after "
                        "reports.resolve_after of quiet")
DELIVERY_FAILURES = Counter("baton_delivery_failures_total", "Messages not delivered, or of unknown delivery",
                            ["channel", "outcome"])


class QueueCollector(Collector):
    """The work waiting in Redis, per workspace: how much, and how old the oldest is."""

    def __init__(self, deployment: Any) -> None:
        self.deployment = deployment

    def collect(self) -> Iterator[GaugeMetricFamily]:
        depth = GaugeMetricFamily("baton_queue_depth", "Work waiting", labels=["workspace", "queue"])
        age = GaugeMetricFamily("baton_queue_oldest_seconds", "Age of the oldest waiting item (for the no-human "
                                "timers: how far past its deadline the most overdue one is)",
                                labels=["workspace", "queue"])
        client, now = self.deployment.redis, time.time() * 1000
        for workspace in self.deployment.config.workspaces:
            for name, template in (("turns", keys.PENDING_TURNS), ("outboxes", keys.OUTBOXES),
                                   ("no_human_timers", keys.FALLBACK_TIMERS), ("sla_timers", keys.SLA_TIMERS)):
                zset = keys.key(template, workspace_id=workspace.id)
                oldest = client.zrange(zset, 0, 0, withscores=True)
                depth.add_metric([workspace.id, name], client.zcard(zset))
                age.add_metric([workspace.id, name], max(0.0, (now - oldest[0][1]) / 1000) if oldest else 0.0)
        jobs = self.deployment.queue
        depth.add_metric(["", "rq"], jobs.count)
        age.add_metric(["", "rq"], _oldest_job_age(jobs, now / 1000))
        yield depth
        yield age
        yield self._conversations()

    def _conversations(self) -> GaugeMetricFamily:
        chats = GaugeMetricFamily("baton_open_conversations", "Open conversations by who has them: ai, waiting (for a "
                                  "human), assigned (to an agent); overdue: past a response target (sla:)",
                                  labels=["workspace", "state"])
        for workspace in self.deployment.config.workspaces:
            sizes = self.deployment.store.view_sizes(workspace.id, ("open", "ai", "waiting", "overdue"))
            chats.add_metric([workspace.id, "ai"], sizes["ai"])
            chats.add_metric([workspace.id, "waiting"], sizes["waiting"])
            chats.add_metric([workspace.id, "assigned"], max(0, sizes["open"] - sizes["ai"] - sizes["waiting"]))
            chats.add_metric([workspace.id, "overdue"], sizes["overdue"])
        return chats


class ReportCollector(Collector):
    """The Reports' series that are counters, for all time, per workspace and channel: read from the totals the state
    script keeps beside the per-day counters (REPORT_TOTALS, only ever incremented), so they are the deployment's
    whichever gateway answers. A conversation reopened after the AI resolved it counts in both outcomes here (events),
    and in one in the Reports (its latest)."""

    def __init__(self, deployment: Any) -> None:
        self.deployment = deployment

    def collect(self) -> Iterator[CounterMetricFamily]:
        labels = ["workspace", "channel"]
        conversations = CounterMetricFamily("baton_report_conversations", "Conversations started", labels=labels)
        outcomes = CounterMetricFamily("baton_report_outcomes", "Conversations reaching an outcome (ai_resolved, "
                                       "handed_over, abandoned; auto_resolved and returned among the AI's)",
                                       labels=[*labels, "outcome"])
        handovers = CounterMetricFamily("baton_report_handovers", "Conversations handed to people, by route",
                                        labels=[*labels, "route"])
        ratings = CounterMetricFamily("baton_report_csat", "Customer ratings, by who resolved and the rating",
                                      labels=[*labels, "by", "rating"])
        forms = CounterMetricFamily("baton_report_contact_forms", "Contact forms sent and captured",
                                    labels=[*labels, "event"])
        times = CounterMetricFamily("baton_report_times", "Conversations timed, by measure and bucket (`le`: the "
                                    "bucket's upper bound in seconds, +Inf past the last)",
                                    labels=[*labels, "measure", "le"])
        bounds = [str(b) for b in reports.BUCKETS] + ["+Inf"]
        for workspace in self.deployment.config.workspaces:
            stored: Any = self.deployment.redis.hgetall(keys.key(keys.REPORT_TOTALS, workspace_id=workspace.id))
            for field, raw in stored.items():
                parsed = reports.parse_field(field)
                if parsed is None:
                    continue
                kind, name, index, channel_name = parsed
                value, where = float(raw), [workspace.id, channel_name]
                if kind == "count" and name == "conversations":
                    conversations.add_metric(where, value)
                elif kind == "count" and name in ("forms_sent", "forms_captured"):
                    forms.add_metric([*where, name.removeprefix("forms_")], value)
                elif kind == "count" and name != "open":
                    outcomes.add_metric([*where, name], value)
                elif kind == "handover":
                    handovers.add_metric([*where, name], value)
                elif kind == "csat":
                    ratings.add_metric([*where, name, str(index + 1)], value)
                elif kind == "time":
                    times.add_metric([*where, name, bounds[index]], value)
        yield from (conversations, outcomes, handovers, ratings, forms, times)


def _oldest_job_age(queue: Any, now: float) -> float:
    """Seconds since the job at the head of the RQ queue (the notifications) was enqueued; 0 when it is empty."""
    head = queue.get_job_ids(0, 1)
    job = queue.fetch_job(head[0]) if head else None
    if job is None or job.enqueued_at is None:
        return 0.0
    return max(0.0, now - job.enqueued_at.timestamp())


def exposition(deployment: Any) -> tuple[bytes, str]:
    """The text of /metrics: this machine's processes (or, alone, this process) and the deployment's queues."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        processes = CollectorRegistry()
        MultiProcessCollector(processes)
    else:
        processes = REGISTRY
    queues = CollectorRegistry()
    queues.register(QueueCollector(deployment))
    queues.register(ReportCollector(deployment))
    return generate_latest(processes) + generate_latest(queues), CONTENT_TYPE_LATEST


class _Process(Collector):
    """This process's metrics and the deployment's queues, for a worker's own metrics port."""

    def __init__(self, deployment: Any) -> None:
        self.queues = QueueCollector(deployment)
        self.reports = ReportCollector(deployment)

    def collect(self) -> Iterator[Any]:
        yield from REGISTRY.collect()
        yield from self.queues.collect()
        yield from self.reports.collect()


def serve_worker_metrics(deployment: Any, port: int, host: str) -> None:
    """Serve a worker's metrics on their own address (a worker on a machine without a gateway)."""
    registry = CollectorRegistry()
    registry.register(_Process(deployment))
    start_http_server(port, addr=host, registry=registry)


def clear(directory: str) -> None:
    """Start a fresh multiprocess directory (the files of processes that are gone would add up for ever)."""
    os.makedirs(directory, exist_ok=True)
    for name in os.listdir(directory):
        if name.endswith(".db"):
            os.unlink(os.path.join(directory, name))
