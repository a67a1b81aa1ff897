"""RFC 5322 dates, and the forms mailers actually write, → ISO 8601; total, as mail needs."""

from __future__ import annotations

import email.utils
import re
from datetime import UTC, datetime, timedelta, timezone

from chalicelib.mime.text import clean, without_comments

__all__ = ["parse_date"]


# Zone names mailers still write that email.utils does not know (it knows UT, GMT, Z and
# the North American ones). Ambiguous names such as IST are left out on purpose.
_ZONE_NAMES = {
    "JST": "+0900",
    "KST": "+0900",
    "HKT": "+0800",
    "SGT": "+0800",
    "AWST": "+0800",
    "ACST": "+0930",
    "AEST": "+1000",
    "AEDT": "+1100",
    "NZST": "+1200",
    "NZDT": "+1300",
    "WET": "+0000",
    "WEST": "+0100",
    "BST": "+0100",
    "CET": "+0100",
    "MET": "+0100",
    "CEST": "+0200",
    "MEST": "+0200",
    "EET": "+0200",
    "EEST": "+0300",
    "MSK": "+0300",
    "HST": "-1000",
    "AKST": "-0900",
    "AKDT": "-0800",
}
_TRAILING_ZONE_NAME = re.compile(r"\s\(?([A-Za-z]{2,5})\)?\s*$")
_NUMERIC_ZONE = re.compile(r"[+-]\d{4}\b")
_AROUND_COLONS = re.compile(r"\s*:\s*")


_MONTHS = {name: number for number, name in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), start=1)}
# RFC 5322's own form, which nearly every mailer writes, read without email.utils.
# Years from 1000 only: email.utils reads 0000-0099 as 19xx or 20xx.
_RFC5322_DATE = re.compile(
    r"(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), )?([0-9]{1,2}) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
    r"([1-9][0-9]{3}) ([0-9]{2}):([0-9]{2}):([0-9]{2}) ([+-])([0-9]{2})([0-9]{2})"
)


def _iso(year: int, month: int, day: int, hour: int, minute: int, second: int, offset: int) -> str:
    # A leap second is kept in its minute; an impossible field raises (parse_date answers None).
    moment = datetime(year, month, day, hour, minute, min(second, 59), tzinfo=timezone(timedelta(seconds=offset)))
    return moment.isoformat()


def _parse_date(value: str) -> str | None:
    plain = _RFC5322_DATE.fullmatch(value)
    if plain is not None:
        day, month, year, hour, minute, second, sign, zone_hours, zone_minutes = plain.groups()
        offset = (int(zone_hours) * 3600 + int(zone_minutes) * 60) * (-1 if sign == "-" else 1)
        return _iso(int(year), _MONTHS[month.lower()], int(day), int(hour), int(minute), int(second), offset)
    return _parse_date_carefully(value)


def _parse_date_carefully(value: str) -> str | None:
    text = clean(value).strip()
    if not text:
        return None
    zone = _TRAILING_ZONE_NAME.search(text)
    if zone and zone.group(1).upper() in _ZONE_NAMES and not _NUMERIC_ZONE.search(text):
        text = f"{text[: zone.start()]} {_ZONE_NAMES[zone.group(1).upper()]}"
    parsed = email.utils.parsedate_tz(text)
    if parsed is None and ("(" in text or re.search(r"\s:|:\s", text)):
        # RFC 5322's obsolete syntax: comments and blanks inside the time (``09(comment):   55  :  06``).
        parsed = email.utils.parsedate_tz(_AROUND_COLONS.sub(":", without_comments(text)))
    if parsed is None:
        # Some gateways write ISO 8601 into Date:.
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.isoformat()
    year, month, day, hour, minute, second = parsed[:6]
    return _iso(year, month, day, hour, minute, second, parsed[9] or 0)  # no zone and -0000 both count as UTC


def parse_date(value: str | None) -> str | None:
    """ISO 8601 with offset from an RFC 5322 date (``2013-09-25T18:16:53+09:00``), or None.

    Accepts the obsolete and broken forms email.utils does (two-digit years, missing day
    name or seconds, dotted times, trailing comments), common zone names such as JST or
    CET, and ISO 8601 itself. A missing zone or ``-0000`` gives ``+00:00``; an impossible
    date or offset gives None.
    """
    if not isinstance(value, str):
        return None
    try:
        return _parse_date(value)
    except Exception:  # total by contract: out-of-range fields, odd tuples
        return None
