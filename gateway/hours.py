"""Business hours: whether the team is in, and when it is next, in the workspace's time zone.

`business_hours:` names a time zone, the opening hours of each weekday (several ranges a day; "24:00" ends a day)
and holidays (dates when the team is out all day). Times are wall-clock times of that zone, so a day that a
daylight-saving change shortens or lengthens keeps its opening hours as people read them.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from gateway.config import BusinessHoursConfig

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_LOOK_AHEAD_DAYS = 370  # a year of holidays and closed weekdays: beyond that, the team is never back


def _ranges(hours: BusinessHoursConfig, day: date) -> list[tuple[time, time | None]]:
    """The day's opening ranges as (start, end); end None is midnight at the day's end ("24:00")."""
    if day in hours.holidays:
        return []
    found = []
    for span in getattr(hours.weekly, DAYS[day.weekday()]):
        start, end = span.split("-")
        found.append((_time(start), None if end == "24:00" else _time(end)))
    return sorted(found, key=lambda r: r[0])


def _time(text: str) -> time:
    hour, minute = text.split(":")
    return time(int(hour), int(minute))


def _local(hours: BusinessHoursConfig, moment: datetime) -> datetime:
    return moment.astimezone(ZoneInfo(hours.timezone))


def is_open(hours: BusinessHoursConfig | None, moment: datetime) -> bool:
    """The team is in at `moment` (an aware datetime); always, when the workspace sets no hours."""
    if hours is None:
        return True
    local = _local(hours, moment)
    wall = local.time().replace(tzinfo=None)
    return any(start <= wall and (end is None or wall < end) for start, end in _ranges(hours, local.date()))


def next_opening(hours: BusinessHoursConfig | None, moment: datetime) -> datetime | None:
    """When the team is next in, from `moment` on (`moment` itself while open), as an aware datetime in the
    workspace's zone; None when it never is within a year (or no hours are set: then it is always in)."""
    if hours is None:
        return None
    if is_open(hours, moment):
        return _local(hours, moment)
    zone = ZoneInfo(hours.timezone)
    local = _local(hours, moment)
    for offset in range(_LOOK_AHEAD_DAYS):
        day = local.date() + timedelta(days=offset)
        for start, _end in _ranges(hours, day):
            opening = datetime.combine(day, start, tzinfo=zone)
            # A wall-clock time that a spring-forward gap skips does not exist: fold it to the real instant after.
            opening = opening.astimezone(UTC).astimezone(zone)
            if opening > local:
                return opening
    return None


def after_open_time(hours: BusinessHoursConfig | None, moment: datetime, seconds: float) -> datetime | None:
    """The instant `seconds` of opening hours after `moment` (a response target's deadline: the clock stops while the
    team is out); None when the team is never in within a year. Without hours, simply `seconds` later."""
    if hours is None:
        return moment + timedelta(seconds=seconds)
    left = timedelta(seconds=seconds)
    at = moment.astimezone(UTC)
    for _ in range(_LOOK_AHEAD_DAYS * 4):  # each step crosses one opening range
        opening = next_opening(hours, at)
        if opening is None:
            return None
        start = max(at, opening.astimezone(UTC))
        closing = _closing(hours, opening)
        if start + left <= closing:
            return start + left
        left -= closing - start
        at = closing
    return None


def _closing(hours: BusinessHoursConfig, opening: datetime) -> datetime:
    """The end (in UTC) of the opening range that `opening` (an instant while open) falls in."""
    zone = ZoneInfo(hours.timezone)
    local = _local(hours, opening)
    wall = local.time().replace(tzinfo=None)
    for start, end in _ranges(hours, local.date()):
        if start <= wall and (end is None or wall < end):
            if end is None:
                ends = datetime.combine(local.date() + timedelta(days=1), time(0), tzinfo=zone)
            else:
                ends = datetime.combine(local.date(), end, tzinfo=zone)
            return ends.astimezone(UTC)
    return opening.astimezone(UTC)


# How each language says when the team is back: soon, today at, tomorrow at, on <weekday> <day> <month> at.
_WHEN: dict[str, tuple[str, str, str, str]] = {
    "en": ("soon", "today at {at}", "tomorrow at {at}", "on {weekday} {day} {month} at {at}"),
    "es": ("pronto", "hoy a las {at}", "mañana a las {at}", "el {weekday} {day} de {month} a las {at}"),
    "fr": ("bientôt", "aujourd'hui à {at}", "demain à {at}", "le {weekday} {day} {month} à {at}"),
    "de": ("bald", "heute um {at}", "morgen um {at}", "am {weekday}, {day}. {month} um {at}"),
    "pt": ("em breve", "hoje às {at}", "amanhã às {at}", "{weekday}, {day} de {month}, às {at}"),
    "it": ("presto", "oggi alle {at}", "domani alle {at}", "{weekday} {day} {month} alle {at}"),
}
_WEEKDAYS: dict[str, tuple[str, ...]] = {
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
    "es": ("lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo"),
    "fr": ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"),
    "de": ("Montag", "Dienstag", "Mittwoch", "Donnerstag", "Freitag", "Samstag", "Sonntag"),
    "pt": ("segunda-feira", "terça-feira", "quarta-feira", "quinta-feira", "sexta-feira", "sábado", "domingo"),
    "it": ("lunedì", "martedì", "mercoledì", "giovedì", "venerdì", "sabato", "domenica"),
}
_MONTHS: dict[str, tuple[str, ...]] = {
    "en": ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December"),
    "es": ("enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto", "septiembre", "octubre",
           "noviembre", "diciembre"),
    "fr": ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre",
           "novembre", "décembre"),
    "de": ("Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September", "Oktober",
           "November", "Dezember"),
    "pt": ("janeiro", "fevereiro", "março", "abril", "maio", "junho", "julho", "agosto", "setembro", "outubro",
           "novembro", "dezembro"),
    "it": ("gennaio", "febbraio", "marzo", "aprile", "maggio", "giugno", "luglio", "agosto", "settembre",
           "ottobre", "novembre", "dicembre"),
}
LANGUAGES = tuple(_WHEN)


def describe(opening: datetime | None, moment: datetime, language: str = "en") -> str:
    """'today at 09:00', 'tomorrow at 09:00' or 'on Monday 6 April at 09:00', as the customer reads it, in their
    language ('mañana a las 09:00', 'am Montag, 6. April um 09:00'); English for a language Baton does not speak.
    Weekday and month names are Baton's own, not the machine's locale."""
    soon, today, tomorrow, later = _WHEN.get(language) or _WHEN["en"]
    if opening is None:
        return soon
    days = (opening.date() - _same_zone(moment, opening).date()).days
    at = opening.strftime("%H:%M")
    if days == 0:
        return today.format(at=at)
    if days == 1:
        return tomorrow.format(at=at)
    names = language if language in _WEEKDAYS else "en"
    return later.format(weekday=_WEEKDAYS[names][opening.weekday()], day=opening.day,
                        month=_MONTHS[names][opening.month - 1], at=at)


def _same_zone(moment: datetime, other: datetime) -> datetime:
    return moment.astimezone(other.tzinfo)
