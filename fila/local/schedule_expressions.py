"""EventBridge schedule expressions: ``rate(value unit)`` and 6-field ``cron(...)``, in UTC.

Hand-written: EventBridge cron is not Unix cron (a year field, ``?``, 1=SUN, ``L``/``W``/``#``), and a
translation onto croniter would be as long as this parser and less exact.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

MONTHS = {m.upper(): i for i, m in enumerate(calendar.month_abbr) if m}
DAYS = {"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}
UNITS = {"minute": 60, "minutes": 60, "hour": 3600, "hours": 3600, "day": 86400, "days": 86400}


class ScheduleError(ValueError):
    pass


@dataclass(frozen=True)
class Rate:
    seconds: int

    def next_after(self, last: datetime) -> datetime:
        """The next multiple of the period since the epoch: like an EventBridge rule, the rate keeps
        its phase, so a restarted local scheduler does not push the next run back by a period."""
        period = timedelta(seconds=self.seconds)
        return last + (period - (last - EPOCH) % period)


def _field(text: str, low: int, high: int, names: dict[str, int] | None = None) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        step, stepped = 1, "/" in part
        if stepped:
            part, step_text = part.split("/", 1)
            step = _number(step_text, 1, high)
        if part == "*":
            start, end = low, high
        elif "-" in part:
            a, b = part.split("-", 1)
            start, end = _value(a, low, high, names), _value(b, low, high, names)
        else:
            start = _value(part, low, high, names)
            end = high if stepped else start
        if start > end:
            raise ScheduleError(f"range {part!r} runs backwards")
        values.update(range(start, end + 1, step))
    return frozenset(values)


def _value(text: str, low: int, high: int, names: dict[str, int] | None) -> int:
    if names and text.upper() in names:
        return names[text.upper()]
    return _number(text, low, high)


def _number(text: str, low: int, high: int) -> int:
    if not text.isdigit() or not low <= int(text) <= high:
        raise ScheduleError(f"{text!r} is not a number from {low} to {high}")
    return int(text)


@dataclass(frozen=True)
class Cron:
    minutes: frozenset[int]
    hours: frozenset[int]
    months: frozenset[int]
    years: frozenset[int]
    dom: str  # raw day-of-month spec ('?' when unused)
    dow: str  # raw day-of-week spec ('?' when unused)

    @classmethod
    def parse(cls, body: str) -> Cron:
        fields = body.split()
        if len(fields) != 6:
            raise ScheduleError("cron() needs 6 fields: minutes hours day-of-month month day-of-week year")
        minute, hour, dom, month, dow, year = fields
        if (dom == "?") == (dow == "?"):
            raise ScheduleError("exactly one of day-of-month and day-of-week must be '?'")
        cron = cls(_field(minute, 0, 59), _field(hour, 0, 23), _field(month, 1, 12, MONTHS),
                   _field(year, 1970, 2199), dom, dow)
        cron._day_matches(datetime(2024, 1, 1, tzinfo=UTC))  # validate the day fields now
        return cron

    def _day_matches(self, day: datetime) -> bool:
        last = calendar.monthrange(day.year, day.month)[1]
        weekday = (day.weekday() + 1) % 7 + 1  # EventBridge: 1=SUN … 7=SAT
        if self.dow == "?":
            spec = self.dom
            if spec == "L":
                return day.day == last
            if spec.endswith("W"):
                return day.day == _nearest_weekday(day.year, day.month, _number(spec[:-1], 1, 31))
            return day.day in _field(spec, 1, 31)
        spec = self.dow
        if "#" in spec:
            wd, nth = spec.split("#", 1)
            return weekday == _value(wd, 1, 7, DAYS) and (day.day - 1) // 7 + 1 == _number(nth, 1, 5)
        if spec.endswith("L") and spec != "L":
            return weekday == _value(spec[:-1], 1, 7, DAYS) and day.day + 7 > last
        if spec == "L":
            return weekday == 7
        return weekday in _field(spec, 1, 7, DAYS)

    def next_after(self, last: datetime) -> datetime:
        """The first matching minute strictly after ``last``."""
        t = last.replace(second=0, microsecond=0) + timedelta(minutes=1)
        day = t.replace(hour=0, minute=0)
        for _ in range(366 * 30):
            if day.year > max(self.years):
                break
            if day.year in self.years and day.month in self.months and self._day_matches(day):
                for hour in sorted(self.hours):
                    for minute in sorted(self.minutes):
                        candidate = day.replace(hour=hour, minute=minute)
                        if candidate >= t:
                            return candidate
            day += timedelta(days=1)
        raise ScheduleError("this cron expression never fires again")


def _nearest_weekday(year: int, month: int, dom: int) -> int:
    last = calendar.monthrange(year, month)[1]
    dom = min(dom, last)
    wd = calendar.weekday(year, month, dom)  # 0=Mon
    if wd == 5:
        return dom - 1 if dom > 1 else dom + 2
    if wd == 6:
        return dom + 1 if dom < last else dom - 2
    return dom


def parse(expression: str) -> Rate | Cron:
    """A clear ScheduleError for anything EventBridge would reject."""
    match = re.fullmatch(r"\s*(rate|cron)\((.*)\)\s*", expression)
    if not match:
        raise ScheduleError(f"{expression!r}: expected rate(...) or cron(...)")
    kind, body = match.groups()
    if kind == "cron":
        return Cron.parse(body)
    rate = re.fullmatch(r"\s*(\d+)\s+([a-z]+)\s*", body)
    if not rate or rate.group(2) not in UNITS or int(rate.group(1)) < 1:
        raise ScheduleError(f"{expression!r}: expected rate(<positive number> minute[s]|hour[s]|day[s])")
    value, unit = int(rate.group(1)), rate.group(2)
    if (value == 1) != (not unit.endswith("s")):
        raise ScheduleError(f"{expression!r}: use a singular unit for 1 and a plural one otherwise")
    return Rate(value * UNITS[unit])
