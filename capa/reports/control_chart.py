"""Statistical control limits of monthly counts: the c-chart (counts of nonconformities per
equal opportunity, here a calendar month), the one place they are computed, for the dashboard's
monthly chart and the management review pack alike.

    centre c̄ = mean of the monthly counts
    UCL = c̄ + 3·√c̄
    LCL = max(0, c̄ − 3·√c̄)

A month breaks the limits when its count is above the UCL or below the LCL (which, at 0, no
count can be below).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["ControlLimits", "breaches", "c_chart"]


@dataclass(frozen=True)
class ControlLimits:
    """The centre line and the 3-sigma limits of a c-chart."""

    centre: float
    ucl: float
    lcl: float

    def breach(self, count: int) -> str | None:
        """"above" or "below" the limits, or None for a count within them."""
        if count > self.ucl:
            return "above"
        if count < self.lcl:
            return "below"
        return None


def c_chart(counts: Sequence[int]) -> ControlLimits | None:
    """The c-chart limits of monthly counts; None for no months at all."""
    if not counts:
        return None
    centre = sum(counts) / len(counts)
    spread = 3 * math.sqrt(centre)
    return ControlLimits(centre=centre, ucl=centre + spread, lcl=max(0.0, centre - spread))


def breaches(months: Sequence[tuple[str, int]],
             limits: ControlLimits | None) -> list[tuple[str, int, str]]:
    """The months whose count breaks the limits: (month, count, "above" or "below")."""
    if limits is None:
        return []
    return [(month, count, side) for month, count in months
            if (side := limits.breach(count)) is not None]
