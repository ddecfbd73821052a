"""Business hours: open or not, and the next opening, in the workspace's zone, across a daylight-saving change and
a holiday; the contact form at once outside hours with the time the team is back; config errors that name the
path; the AI offering no person it cannot deliver."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from gateway.config import BusinessHoursConfig, ConfigError, WorkspaceConfig, parse_config
from gateway.handover import fallback, lifecycle
from gateway.hours import after_open_time, describe, is_open, next_opening
from gateway.work.turn import Action, Situation, choose

MADRID = BusinessHoursConfig.model_validate({
    "timezone": "Europe/Madrid",
    "weekly": {day: ["09:00-13:00", "15:00-18:00"] for day in ("mon", "tue", "wed", "thu", "fri")},
    "holidays": ["2026-04-03"],  # Good Friday
})
NIGHT_SHIFT = BusinessHoursConfig.model_validate({
    "timezone": "Europe/Madrid", "weekly": {"sat": ["22:00-24:00"], "sun": ["00:00-06:00"]}})


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


# moment (UTC) → open?, the next opening (UTC)
@pytest.mark.parametrize(("moment", "open_", "opening"), [
    # Winter (UTC+1): 09:00 Madrid is 08:00 UTC.
    (utc(2026, 3, 23, 8, 30), True, utc(2026, 3, 23, 8, 30)),
    (utc(2026, 3, 23, 7, 59), False, utc(2026, 3, 23, 8, 0)),
    (utc(2026, 3, 23, 12, 30), False, utc(2026, 3, 23, 14, 0)),  # lunch: back at 15:00 Madrid
    # Friday evening before the change: Monday 09:00 is then summer time (UTC+2), 07:00 UTC.
    (utc(2026, 3, 27, 17, 30), False, utc(2026, 3, 30, 7, 0)),
    (utc(2026, 3, 30, 7, 30), True, utc(2026, 3, 30, 7, 30)),  # 09:30 summer time: open (08:30 winter would not be)
    # The holiday: Thursday evening → Monday, not Friday.
    (utc(2026, 4, 2, 17, 0), False, utc(2026, 4, 6, 7, 0)),
    (utc(2026, 4, 3, 9, 0), False, utc(2026, 4, 6, 7, 0)),
    # Back to winter time on Sunday 25 October 2026: Monday 09:00 is 08:00 UTC again.
    (utc(2026, 10, 23, 17, 0), False, utc(2026, 10, 26, 8, 0)),
])
def test_open_and_next_opening_across_dst_and_a_holiday(moment: datetime, open_: bool, opening: datetime) -> None:
    assert is_open(MADRID, moment) is open_
    found = next_opening(MADRID, moment)
    assert found is not None and found == opening


def test_a_range_to_midnight_and_one_from_it() -> None:
    assert is_open(NIGHT_SHIFT, utc(2026, 3, 7, 22, 59))  # Saturday 23:59 Madrid
    assert is_open(NIGHT_SHIFT, utc(2026, 3, 7, 23, 0))  # Sunday 00:00 Madrid
    assert not is_open(NIGHT_SHIFT, utc(2026, 3, 8, 5, 0))  # Sunday 06:00 Madrid


def test_no_hours_is_always_open() -> None:
    assert is_open(None, utc(2026, 1, 1, 3, 0)) and next_opening(None, utc(2026, 1, 1)) is None


def test_the_next_opening_as_the_customer_reads_it() -> None:
    friday = utc(2026, 4, 2, 17, 0)  # Thursday 19:00 Madrid, before Good Friday
    assert describe(next_opening(MADRID, friday), friday) == "on Monday 6 April at 09:00"
    assert describe(next_opening(MADRID, utc(2026, 3, 23, 12, 30)), utc(2026, 3, 23, 12, 30)) == "today at 15:00"
    assert describe(next_opening(MADRID, utc(2026, 3, 23, 18, 0)), utc(2026, 3, 23, 18, 0)) == "tomorrow at 09:00"


def workspace(**hours: Any) -> WorkspaceConfig:
    return WorkspaceConfig.model_validate({"id": "shop", "business_hours": {**MADRID.model_dump(mode="json"),
                                                                           **hours}})


def test_outside_hours_the_contact_form_comes_at_once_saying_when_the_team_is_back() -> None:
    shop = workspace()
    holiday = utc(2026, 4, 3, 9, 0)
    assert not lifecycle.team_in(shop, holiday)
    assert "back on Monday 6 April at 09:00" in fallback.form_text(shop, holiday)
    assert fallback.form_text(shop, utc(2026, 3, 23, 8, 30)) == fallback.FORM_TEXT
    assert workspace(form_at_once=False).business_hours is not None


def test_no_human_wait_is_immediate_outside_hours_only_when_configured() -> None:
    always_closed = workspace(weekly={}, holidays=[])
    assert lifecycle.no_human_timeout_ms(always_closed) == lifecycle.FORM_AT_ONCE_MS
    assert lifecycle.no_human_timeout_ms(workspace(weekly={}, form_at_once=False)) == 120_000
    always_open = workspace(weekly={d: ["00:00-24:00"] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")},
                            holidays=[])
    assert lifecycle.no_human_timeout_ms(always_open) == 120_000


def test_outside_hours_the_ai_offers_no_person_but_a_request_is_still_a_handover() -> None:
    closed = Situation(owner="ai", ai_has_answered=True, team_in=False)
    assert choose(closed, ["This is useless, nothing you say helps!!"]) is Action.ANSWER
    assert choose(closed, ["transfer to agent"]) is Action.HAND_OVER
    open_ = Situation(owner="ai", ai_has_answered=True)
    assert choose(open_, ["This is useless, nothing you say helps!!"]) is Action.OFFER_PERSON


@pytest.mark.parametrize(("hours", "path"), [
    ({"timezone": "Mars/Olympus", "weekly": {}}, "workspaces[0].business_hours.timezone"),
    ({"timezone": "UTC", "weekly": {"mon": ["9-17"]}}, "workspaces[0].business_hours.weekly.mon"),
    ({"timezone": "UTC", "weekly": {"mon": ["17:00-09:00"]}}, "workspaces[0].business_hours.weekly.mon"),
    ({"timezone": "UTC", "weekly": {"monday": ["09:00-17:00"]}}, "workspaces[0].business_hours.weekly.monday"),
    ({"timezone": "UTC", "weekly": {}, "holidays": ["someday"]}, "workspaces[0].business_hours.holidays[0]"),
])
def test_bad_hours_are_config_errors_naming_the_path(hours: dict[str, Any], path: str) -> None:
    import yaml

    with pytest.raises(ConfigError) as raised:
        parse_config(yaml.safe_dump({"workspaces": [{"id": "shop", "business_hours": hours}]}))
    assert path in str(raised.value)


def test_holidays_are_dates() -> None:
    assert MADRID.holidays == [date(2026, 4, 3)]


def test_outside_hours_a_handover_gets_the_form_at_once_saying_when_the_team_is_back(
        make_deployment: Any) -> None:
    import time
    from datetime import timedelta

    from starlette.testclient import TestClient

    from gateway.web.app import create_app
    from tests.conftest import Visitor, chat_channel, run_jobs

    today = datetime.now(UTC).date()
    every_day = {day: ["00:00-24:00"] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    deployment = make_deployment(business_hours={"timezone": "UTC", "weekly": every_day,
                                                 "holidays": [str(today), str(today + timedelta(days=1))]})
    back = today + timedelta(days=2)
    expected = f"on {back.strftime('%A')} {back.day} {back.strftime('%B')} at 00:00"
    with TestClient(create_app(deployment)) as client:
        assert client.get(f"/webchat/{chat_channel(deployment)}/config").json()["team_back"] == expected
        visitor = Visitor(client, chat_channel(deployment))
        visitor.say("transfer to agent")
        run_jobs(deployment)  # the AI hands over: the wait is a millisecond
        time.sleep(0.05)
        assert len(fallback.fire_due(deployment)) == 1
        forms = [m for m in visitor.history()["messages"] if m.get("kind") == "contact_form"]
        assert len(forms) == 1 and f"back {expected}" in forms[0]["text"]


# --- response targets count business hours only ------------------------------------------------------------------

# start (UTC), target in seconds → its deadline (UTC)
@pytest.mark.parametrize(("start", "seconds", "due"), [
    (utc(2026, 3, 23, 8, 0), 300, utc(2026, 3, 23, 8, 5)),  # Monday 09:00 Madrid: 09:05
    (utc(2026, 3, 23, 11, 58), 300, utc(2026, 3, 23, 14, 3)),  # 12:58: two minutes before lunch, three after it
    (utc(2026, 3, 23, 20, 0), 300, utc(2026, 3, 24, 8, 5)),  # after hours: from the next opening
    # Friday 17:58 winter time, two minutes left; Monday is summer time (09:00 = 07:00 UTC): 09:03.
    (utc(2026, 3, 27, 16, 58), 300, utc(2026, 3, 30, 7, 3)),
    (utc(2026, 4, 2, 16, 0), 7200, utc(2026, 4, 6, 9, 0)),  # Thursday 18:00 before Good Friday: Monday 11:00
    (utc(2026, 10, 23, 15, 0), 4 * 3600, utc(2026, 10, 26, 11, 0)),  # 1 h on Friday, 3 h on Monday in winter: 12:00
])
def test_a_deadline_counts_business_hours_across_dst_and_a_holiday(start: datetime, seconds: int,
                                                                    due: datetime) -> None:
    assert after_open_time(MADRID, start, seconds) == due


def test_a_deadline_across_midnight_of_a_night_shift() -> None:
    # Saturday 23:50 Madrid, 20 minutes: the range to 24:00 then the one from 00:00 → Sunday 00:10.
    assert after_open_time(NIGHT_SHIFT, utc(2026, 3, 7, 22, 50), 1200) == utc(2026, 3, 7, 23, 10)


def test_the_state_scripts_targets_are_offsets_in_business_time() -> None:
    workspace = WorkspaceConfig.model_validate({
        "id": "shop", "business_hours": MADRID.model_dump(mode="json"),
        "sla": {"first_response": 300, "next_response": 120, "on_breach": "notify"}})
    friday_evening = utc(2026, 3, 27, 16, 58)
    targets = lifecycle.sla(workspace, friday_evening)
    assert targets == {"on_breach": "notify", "first_ms": int((utc(2026, 3, 30, 7, 3) - friday_evening)
                                                                .total_seconds() * 1000),
                       "next_ms": 120_000}
    assert lifecycle.sla(WorkspaceConfig(id="plain")) is None
    never = WorkspaceConfig.model_validate({"id": "shut", "sla": {"first_response": 60}, "business_hours": {
        "timezone": "UTC", "weekly": {}}})
    assert lifecycle.sla(never, friday_evening) == {"on_breach": "requeue"}  # never open: no deadline to keep


@pytest.mark.parametrize(("sla", "path"), [
    ({"first_response": 0}, "workspaces[0].sla.first_response"),
    ({"next_response": "soon"}, "workspaces[0].sla.next_response"),
    ({"on_breach": "ignore"}, "workspaces[0].sla.on_breach"),
    ({"first": 60}, "workspaces[0].sla.first"),
])
def test_bad_targets_are_config_errors_naming_the_path(sla: dict[str, Any], path: str) -> None:
    import yaml

    with pytest.raises(ConfigError) as raised:
        parse_config(yaml.safe_dump({"workspaces": [{"id": "shop", "sla": sla}]}))
    assert path in str(raised.value)


def test_the_assignment_argument_says_when_the_team_is_out() -> None:
    out = WorkspaceConfig.model_validate({"id": "shut", "business_hours": {"timezone": "UTC", "weekly": {}}})
    always = WorkspaceConfig.model_validate({"id": "open", "business_hours": {"timezone": "UTC", "weekly": {
        day: ["00:00-24:00"] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}}})
    assert lifecycle.assignment(out)["after_hours"] is True
    assert "after_hours" not in lifecycle.assignment(always)
    assert "after_hours" not in lifecycle.assignment(WorkspaceConfig(id="plain"))
