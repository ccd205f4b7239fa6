"""A clock for the demo only: it records the demo's steps at the past moments they stand for, so
the demo store holds a year of history whose event times, signature times and business dates
agree, and `capa audit verify` passes on it like on any store.

Time only moves forward: a step asked for at a moment before the clock's current time happens
at the current time. Background steps (the year of history) are queued with `later` and run in
time order whenever the foreground story moves the clock past them.
"""

from __future__ import annotations

import datetime as dt
import heapq
import itertools
from collections.abc import Callable
from types import TracebackType
from typing import Any

import time_machine

#: The working day's first step is at this time (UTC); steps of one day follow a minute apart.
WORKDAY_START = dt.time(8, 30)


class DemoClock:
    """Moves this process's clock (every `datetime.now` and `time.time`) between past moments
    while the demo is told; never beyond a few minutes before the real time."""

    def __init__(self, start: dt.datetime) -> None:
        self._real_start = dt.datetime.now(dt.UTC)
        #: The real date the demo is told on; the story's dates count back from it.
        self.real_today = self._real_start.date()
        self.now = min(start, self._latest())
        self._traveller = time_machine.travel(self.now, tick=True)
        self._coordinates: Any = None
        self._queue: list[tuple[dt.datetime, int, Callable[[], None]]] = []
        self._order = itertools.count()

    def _latest(self) -> dt.datetime:
        return self._real_start - dt.timedelta(minutes=5)

    def __enter__(self) -> DemoClock:
        self._coordinates = self._traveller.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self._traveller.stop()

    def moment(self, day: dt.date, step: int = 0) -> dt.datetime:
        """The `step`-th minute of the working day `day` (UTC)."""
        start = dt.datetime.combine(day, WORKDAY_START, tzinfo=dt.UTC)
        return start + dt.timedelta(minutes=step)

    def _move(self, when: dt.datetime) -> None:
        # Compared with the ticking clock itself, so a slow step never lets time run backwards.
        target = min(when, self._latest())
        if target > dt.datetime.now(dt.UTC):
            self._coordinates.move_to(target)
        self.now = max(self.now, target)

    def later(self, when: dt.datetime, step: Callable[[], None]) -> None:
        """Queue a background step for the moment `when`."""
        heapq.heappush(self._queue, (when, next(self._order), step))

    def at(self, when: dt.datetime) -> None:
        """Run every queued step due before `when`, each at its own moment, then move to
        `when` for the foreground step that follows."""
        while self._queue and self._queue[0][0] <= when:
            moment, _, step = heapq.heappop(self._queue)
            self._move(moment)
            step()
        self._move(when)

    def finish(self) -> None:
        """Run what is still queued."""
        while self._queue:
            moment, _, step = heapq.heappop(self._queue)
            self._move(moment)
            step()
