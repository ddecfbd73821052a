"""The team's reports: figures read from the per-day counters the state script keeps as things happen.

Every figure is about the conversations *started* on a day (UTC), so a day's outcomes add up to its conversations:

- **open**: nothing decided yet (the AI or nobody still has it, never handed over, not closed);
- **handed over**: handed to people at some point, whatever happened after (by the AI, an agent taking it, the AI
  being unpublished, or a person reopening it);
- **AI resolved**: closed without ever being handed over, after the AI answered: closed by the AI, by a person, or
  resolved automatically after `reports.resolve_after` (default 24 h) of quiet after the AI's last word;
- **abandoned**: closed without ever being handed over before the AI answered anything.

**Durably resolved**: AI resolved, and the customer did not come back (start a new conversation) within
`reports.durable_days` (default 7) of the close. Times (first response, to assignment, to a person's first reply,
resolution) are counted in fixed buckets (BUCKETS); a percentile is the upper bound of the bucket it falls in.
The state script (gateway/handover/state.lua, REPORT) keeps the counters; nothing here scans conversations.
"""

from __future__ import annotations

import csv
import functools
import io
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from gateway import keys, texts

#: Upper bounds (seconds) of the time histograms' buckets; a last bucket holds everything longer.
BUCKETS = (10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400, 28800, 86400, 259200, 604800)
OUTCOMES = ("ai_resolved", "handed_over", "abandoned", "open")
COUNTERS = ("conversations", *OUTCOMES, "auto_resolved", "returned", "forms_sent", "forms_captured")
TIMES = ("first_response", "to_assignment", "to_human_reply", "resolution")
RATINGS = (1, 2, 3, 4, 5)
MAX_DAYS = 731  # the longest range one request may ask for (two years)


@dataclass(frozen=True)
class Range:
    first: date
    last: date

    @property
    def days(self) -> list[date]:
        return [self.first + timedelta(days=n) for n in range((self.last - self.first).days + 1)]


def parse_range(start: str | None, end: str | None, today: date) -> Range:
    """`from` and `to` (YYYY-MM-DD, both included; by default the last 30 days to `today`), or ValueError saying
    what is wrong."""
    last = _day(end, "to") if end is not None else today
    first = _day(start, "from") if start is not None else last - timedelta(days=29)
    if first > last:
        raise ValueError(f"'from' ({first}) is after 'to' ({last})")
    if (last - first).days + 1 > MAX_DAYS:
        raise ValueError(f"a range is at most {MAX_DAYS} days; this one has {(last - first).days + 1}")
    return Range(first, last)


def _day(value: str, name: str) -> date:
    if not (len(value) == 10 and value.isascii()):
        raise ValueError(f"'{name}' must be a date, YYYY-MM-DD")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"'{name}' must be a date, YYYY-MM-DD ({value!r} is not one)") from None


# Sums the days' counters inside the server (read only): the range's total of every field, and each day's COUNTERS,
# so a year of a busy workspace crosses the network as one hash and 365 short rows, not 365 whole hashes.
# KEYS: the days' REPORT hashes; ARGV[1]: one channel, or '' for all; ARGV[2..]: the counters kept by day.
SUM_SCRIPT = """
local channel = ARGV[1]
local daily = {}
for i = 2, #ARGV do daily[ARGV[i]] = i - 1 end
local total, days = {}, {}
for d, name in ipairs(KEYS) do
  local flat = redis.call('HGETALL', name)
  local row = {}
  for i = 1, #flat, 2 do
    local field = flat[i]
    local bar = string.find(field, '|', 1, true)
    if bar and (channel == '' or string.sub(field, bar + 1) == channel) then
      local value = tonumber(flat[i + 1]) or 0
      total[field] = (total[field] or 0) + value
      local slot = daily[string.sub(field, 1, bar - 1)]
      if slot then row[slot] = (row[slot] or 0) + value end
    end
  end
  local out = {}
  for j = 1, #ARGV - 1 do out[j] = row[j] or 0 end
  days[d] = out
end
local flat_total = {}
for field, value in pairs(total) do
  flat_total[#flat_total + 1] = field
  flat_total[#flat_total + 1] = tostring(value)
end
return {flat_total, days}
"""


def read_days(client: Any, workspace_id: str, days: list[date]) -> list[dict[str, str]]:
    """Each day's counters, as stored: one pipelined round trip."""
    pipe = client.pipeline(transaction=False)
    for day in days:
        pipe.hgetall(keys.key(keys.REPORT, workspace_id=workspace_id, day=day.isoformat()))
    return list(pipe.execute())


def _empty() -> dict[str, Any]:
    return {"counts": dict.fromkeys(COUNTERS, 0), "handover": {}, "csat": {"ai": [0] * 5, "human": [0] * 5},
            "times": {name: [0] * (len(BUCKETS) + 1) for name in TIMES}, "channels": {}}


@functools.lru_cache(maxsize=8192)
def parse_field(field: str) -> tuple[str, str, int, str] | None:
    """A stored field ("<metric>|<channel>") as (kind, name, index, channel), or None for one this release does not
    read. Field names repeat every day: parsed once."""
    metric, _, where = field.rpartition("|")
    name, _, part = metric.partition(":")
    if name in COUNTERS and not part:
        return "count", name, 0, where
    if name == "handover" and part:
        return "handover", part, 0, where
    if name == "csat":
        who, _, rating = part.partition(":")
        if who in ("ai", "human") and rating.isdigit() and 1 <= int(rating) <= 5:
            return "csat", who, int(rating) - 1, where
        return None
    if name in TIMES and part.isdigit() and 1 <= int(part) <= len(BUCKETS) + 1:
        return "time", name, int(part) - 1, where
    return None


def _add(into: dict[str, Any], stored: dict[str, str], channel_name: str | None) -> None:
    """Add a day's stored counters (of one channel, or all when None) into `into`."""
    counts, handover, csat, times, channels = (into["counts"], into["handover"], into["csat"], into["times"],
                                               into["channels"])
    for field, raw in stored.items():
        parsed = parse_field(field)
        if parsed is None:
            continue
        kind, name, index, where = parsed
        if channel_name is not None and where != channel_name:
            continue
        value = int(raw)
        if kind == "count":
            counts[name] += value
            if name == "conversations":
                channels[where] = channels.get(where, 0) + value
        elif kind == "time":
            times[name][index] += value
        elif kind == "csat":
            csat[name][index] += value
        else:
            handover[name] = handover.get(name, 0) + value


def _merge(into: dict[str, Any], day: dict[str, Any]) -> None:
    for name, value in day["counts"].items():
        into["counts"][name] += value
    for part in ("handover", "channels"):
        for name, value in day[part].items():
            into[part][name] = into[part].get(name, 0) + value
    for part in ("csat", "times"):
        for name, values in day[part].items():
            into[part][name] = [a + b for a, b in zip(into[part][name], values, strict=True)]


def percentile(counts: list[int], q: float) -> float | None:
    """The upper bound (seconds) of the bucket holding the q-th quantile; None without data, or when it falls in the
    last bucket (longer than the last bound, which has no upper bound)."""
    total = sum(counts)
    if not total:
        return None
    rank = q * total
    seen = 0
    for index, n in enumerate(counts):
        seen += n
        if seen >= rank and n:
            return float(BUCKETS[index]) if index < len(BUCKETS) else None
    return None


def _share(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def _summary(data: dict[str, Any]) -> dict[str, Any]:
    counts = data["counts"]
    total = counts["conversations"]
    durable = counts["ai_resolved"] - counts["returned"]
    csat = {}
    for who, ratings in data["csat"].items():
        n = sum(ratings)
        csat[who] = {"responses": n, "average": round(sum((i + 1) * k for i, k in enumerate(ratings)) / n, 3)
                     if n else None, "satisfied": _share(ratings[3] + ratings[4], n), "ratings": ratings}
    return {
        "conversations": total,
        "shares": _shares(counts),
        "counts": counts,
        "channels": data["channels"],
        "ai_resolution_rate": _share(counts["ai_resolved"], total),
        "durable_resolution_rate": _share(durable, total),
        "durable": durable,
        "handover_rate": _share(counts["handed_over"], total),
        "handover_reasons": dict(sorted(data["handover"].items())),
        "times": {name: {"p50": percentile(buckets, 0.5), "p90": percentile(buckets, 0.9), "count": sum(buckets),
                         "buckets": buckets} for name, buckets in data["times"].items()},
        "csat": csat,
        "forms": {"sent": counts["forms_sent"], "captured": counts["forms_captured"]},
    }


def _shares(counts: dict[str, int]) -> dict[str, float]:
    """The outcomes as shares of the conversations in millionths that add up to exactly a million (largest
    remainders get the rounding's leftover units, ties in OUTCOMES' order); all 0 when there are none."""
    total = sum(counts[name] for name in OUTCOMES)
    if not total:
        return dict.fromkeys(OUTCOMES, 0.0)
    units = {name: counts[name] * 1_000_000 // total for name in OUTCOMES}
    leftover = 1_000_000 - sum(units.values())
    by_remainder = sorted(OUTCOMES, key=lambda name: -(counts[name] * 1_000_000 % total))
    for name in by_remainder[:leftover]:
        units[name] += 1
    return {name: units[name] / 1_000_000 for name in OUTCOMES}


def _day_summary(data: dict[str, Any]) -> dict[str, Any]:
    """A day of the series: its counts, shares and rates (the times, CSAT and handovers are the range's)."""
    counts = data["counts"]
    total = counts["conversations"]
    return {"conversations": total, "shares": _shares(counts), "counts": counts,
            "ai_resolution_rate": _share(counts["ai_resolved"], total),
            "durable_resolution_rate": _share(counts["ai_resolved"] - counts["returned"], total),
            "handover_rate": _share(counts["handed_over"], total)}


def report(client: Any, workspace_id: str, span: Range, channel_name: str | None = None,
           whole_days: bool = False) -> dict[str, Any]:
    """The range's figures and its series by day (of one channel, or every channel): each day's counts, shares and
    rates (summed inside the server, SUM_SCRIPT), or (`whole_days`, for the CSV) all of its figures."""
    if not whole_days:
        names = [keys.key(keys.REPORT, workspace_id=workspace_id, day=day.isoformat()) for day in span.days]
        flat, rows = client.eval(SUM_SCRIPT, len(names), *names, channel_name or "", *COUNTERS)
        total = _empty()
        _add(total, dict(zip(flat[::2], flat[1::2], strict=True)), channel_name)
        series = [{"day": day.isoformat(), **_day_summary({"counts": dict(zip(COUNTERS, map(int, row), strict=True))})}
                  for day, row in zip(span.days, rows, strict=True)]
        seen = sorted(set(total["channels"]) | {field.rpartition("|")[2] for field in flat[::2]})
        return {"from": span.first.isoformat(), "to": span.last.isoformat(), "channel": channel_name,
                "channels_seen": seen, "buckets": list(BUCKETS), **_summary(total), "series": series}
    stored = read_days(client, workspace_id, span.days)
    total = _empty()
    series = []
    for day, fields in zip(span.days, stored, strict=True):
        one = _empty()
        _add(one, fields, channel_name)
        _merge(total, one)
        series.append({"day": day.isoformat(), **_summary(one)})
    seen = sorted({field.rpartition("|")[2] for fields in stored for field in fields})
    return {"from": span.first.isoformat(), "to": span.last.isoformat(), "channel": channel_name,
            "channels_seen": seen,
            "buckets": list(BUCKETS), **_summary(total), "series": series}


CSV_COLUMNS = ("day", "conversations", *OUTCOMES, "auto_resolved", "returned", "durable", "ai_resolution_rate",
               "durable_resolution_rate", "handover_rate", "forms_sent", "forms_captured",
               *(f"{name}_{q}_s" for name in TIMES for q in ("p50", "p90")),
               "csat_ai_responses", "csat_ai_average", "csat_human_responses", "csat_human_average")


def _row(day: str, summary: dict[str, Any]) -> list[Any]:
    counts = summary["counts"]
    row: list[Any] = [day, summary["conversations"], *(counts[name] for name in OUTCOMES), counts["auto_resolved"],
                      counts["returned"], summary["durable"], round(summary["ai_resolution_rate"], 6),
                      round(summary["durable_resolution_rate"], 6), round(summary["handover_rate"], 6),
                      counts["forms_sent"], counts["forms_captured"]]
    for name in TIMES:
        row += [_blank(summary["times"][name]["p50"]), _blank(summary["times"][name]["p90"])]
    for who in ("ai", "human"):
        row += [summary["csat"][who]["responses"], _blank(summary["csat"][who]["average"])]
    return row


def _blank(value: float | None) -> Any:
    return "" if value is None else (int(value) if float(value).is_integer() else value)


def as_csv(answer: dict[str, Any]) -> str:
    """The report as CSV: one row per day, then a row `total` for the range."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for day in answer["series"]:
        writer.writerow(_row(day["day"], day))
    writer.writerow(_row("total", answer))
    return out.getvalue()


def settings(workspace: Any) -> dict[str, dict[str, Any]]:
    """What the state script's operations are given from config.yaml (`reports`, the texts), by operation."""
    own = workspace.reports
    resolve_ms = int(own.resolve_after * 1000)
    found: dict[str, dict[str, Any]] = {
        "inbound": {"durable_ms": int(own.durable_days * 86_400_000)},
        "post": {"resolve_ms": resolve_ms}, "finish": {"resolve_ms": resolve_ms}}
    if own.csat:
        found["inbound"].update(csat_ms=int(own.csat_reply_hours * 3_600_000),
                                csat_thanks=texts.every("csat_thanks", workspace.language, workspace.texts))
        found["close"] = {"csat_question": texts.every("csat_question", workspace.language, workspace.texts),
                          "window_ms": WINDOW_MS}
    return found


WINDOW_MS = 24 * 3600 * 1000  # WhatsApp's customer service window: a free-form question only inside it
