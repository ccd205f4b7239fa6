"""Calendar dates as people type them (SPEC §10): the one parser behind every date option of the
command line and every date cell of an import, so that a value means the same day everywhere.

ISO `YYYY-MM-DD` is always read (a month or day may have one digit, `2026-1-5`: a year first
is never followed by the day). Any other layout is read only when it is named with a
`--date-format` (`DD/MM/YYYY`, `MM/DD/YYYY`, `DD.MM.YYYY`, `YYYY/MM/DD`, …): `01/12/2026` is
1 December in one country and 12 January in another, and a quality record must not guess.
A time of day after the date (`2026-01-05 14:30:00`, `1/5/2026 2:30:00`) is ignored.
"""

from __future__ import annotations

import datetime as dt
import re
from functools import lru_cache

#: The orders of day, month and year that `--date-format` may name; year-first is only ever
#: followed by the month.
ORDERS = ("DMY", "MDY", "YMD")
SEPARATORS = "/.-"
#: The layouts a user may name, for help texts and messages.
FORMATS = tuple(f"{sep.join({'D': 'DD', 'M': 'MM', 'Y': 'YYYY'}[p] for p in order)}"
                for order in ORDERS for sep in SEPARATORS) + ("YYYYMMDD",)

#: A time of day after a date, which is read and dropped: hours 0-23, minutes and seconds 0-59.
_TIME = r"(?:[01]?\d|2[0-3]):[0-5]\d(?::[0-5]\d(?:\.\d+)?)?"
_ISO = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})"
                  rf"(?:[T ]{_TIME}(?:Z|[+-]\d{{2}}:?\d{{2}})?)?", re.ASCII)
#: Any three-part date with one separator, and an optional time of day after it.
_PARTS = re.compile(r"(\d{1,4})([/.\-])(\d{1,2})\2(\d{1,4})"
                    rf"(?:[T ]+{_TIME}(?: ?[AaPp][Mm])?)?", re.ASCII)
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December")


class DateFormat:
    """A layout named with `--date-format`: the order of the parts and their separator."""

    def __init__(self, name: str) -> None:
        layout = name.strip().upper()
        self.name = layout
        if layout == "YYYYMMDD":
            self.order, self.separator = "YMD", ""
            return
        match = re.fullmatch(r"(DD|MM|YYYY)([/.\-])(DD|MM|YYYY)\2(DD|MM|YYYY)", layout, re.ASCII)
        order = "".join(match.group(i)[0] for i in (1, 3, 4)) if match else ""
        if match is None or order not in ORDERS:
            raise ValueError(f"--date-format {name!r} is not a layout capa reads; use one of: "
                             f"{', '.join(FORMATS)}")
        self.order, self.separator = order, match.group(2)

    def read(self, text: str) -> dt.date | None:
        """The day `text` names in this layout, or None if it is not written in it."""
        if not self.separator:
            if len(text) == 8 and text.isascii() and text.isdigit():
                return _day(int(text[:4]), int(text[4:6]), int(text[6:]))
            return None
        match = _PARTS.fullmatch(text)
        if match is None or match.group(2) != self.separator:
            return None
        parts = dict(zip(self.order, (match.group(1), match.group(3), match.group(4)),
                         strict=True))
        if len(parts["Y"]) != 4 or len(parts["D"]) > 2 or len(parts["M"]) > 2:
            return None
        return _day(int(parts["Y"]), int(parts["M"]), int(parts["D"]))


def _day(year: int, month: int, day: int) -> dt.date | None:
    try:
        return dt.date(year, month, day)
    except ValueError:
        return None


@lru_cache(maxsize=32)
def date_format(name: str) -> DateFormat:
    """The layout `name` (`DD/MM/YYYY`…); ValueError naming the layouts capa reads otherwise."""
    return DateFormat(name)


def parse_day(value: str, layout: str | None = None, *, option: bool = True) -> dt.date:
    """The calendar day `value` names: ISO always, another layout only when named.

    Raises ValueError with a sentence a user can act on: the value, and either the layout to
    name or, for a value that reads as two different days, both readings. `option`: whether
    the command offers `--date-format` (the import does; single-record options take ISO).
    """
    text = value.strip()
    # ASCII digits only: fromisoformat and int() would read other scripts' digits too.
    if len(text) == 10 and text[4] == "-" and text[7] == "-" and text.isascii():
        try:
            return dt.date.fromisoformat(text)  # the common case, and far cheaper than a regex
        except ValueError:
            pass
    fmt = date_format(layout) if layout else None
    if fmt is not None:
        day = fmt.read(text)
        if day is not None:
            return day
    iso = _ISO.fullmatch(text)
    if iso is not None:
        day = _day(int(iso.group(1)), int(iso.group(2)), int(iso.group(3)))
        if day is None:
            raise ValueError(f"{_shown(text)} is not a calendar day (YYYY-MM-DD)")
        return day
    if fmt is not None:
        raise ValueError(f"{_shown(text)} is not a date in the layout {fmt.name} (nor "
                         "YYYY-MM-DD)")
    raise ValueError(_unread(text, option))


def _unread(text: str, option: bool) -> str:
    """Why a non-ISO value is refused without --date-format, naming both readings if any."""
    shown = _shown(text)
    match = _PARTS.fullmatch(text)
    if match is not None and len(match.group(4)) == 4:
        first, sep, second, year = (match.group(1), match.group(2), match.group(3),
                                    int(match.group(4)))
        day_first = _day(year, int(second), int(first))
        month_first = _day(year, int(first), int(second))
        dd, mm = f"DD{sep}MM{sep}YYYY", f"MM{sep}DD{sep}YYYY"
        if day_first and month_first and day_first != month_first:
            advice = (f"pass --date-format {dd} or {mm}" if option
                      else f"write it as {day_first} or {month_first}")
            return (f"{shown} could be {_spoken(day_first)} ({dd}) or {_spoken(month_first)} "
                    f"({mm}); {advice}")
        day = day_first or month_first
        if day is not None:
            layout = f"{dd} or {mm}" if day_first == month_first else dd if day_first else mm
            advice = (f"pass --date-format {layout}" if option
                      else f"write it as {day.isoformat()}")
            return f"{shown} is not YYYY-MM-DD; {advice}"
    advice = "; for another layout pass --date-format" if option else ""
    return f"{shown} is not a date YYYY-MM-DD{advice}"


def _shown(text: str) -> str:
    """A refused value as a message quotes it: escaped, and cut if it is long."""
    return repr(text) if len(text) <= 40 else repr(text[:37] + "...")


def _spoken(day: dt.date) -> str:
    return f"{day.day} {_MONTHS[day.month - 1]} {day.year}"
