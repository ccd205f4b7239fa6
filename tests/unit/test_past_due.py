"""The past-due rule of action items (R5 family, SPEC §10), without any store."""

from __future__ import annotations

import pytest

from capa.domain.corrective_action import past_due_accepted
from capa.domain.errors import RuleViolation

TODAY = "2026-12-01"


@pytest.mark.parametrize("due", ["2026-12-01", "2026-12-02", "2027-01-01"])
def test_today_or_later_needs_no_reason_and_keeps_none(due: str) -> None:
    assert past_due_accepted(due, TODAY, None) is None
    assert past_due_accepted(due, TODAY, "given anyway") is None


@pytest.mark.parametrize("due", ["2026-11-30", "2025-12-31", "1999-01-01"])
def test_a_past_date_without_a_reason_is_refused_under_r5(due: str) -> None:
    with pytest.raises(RuleViolation) as refused:
        past_due_accepted(due, TODAY, None)
    assert refused.value.rule == "R5"
    assert due in str(refused.value) and "--allow-past-due" in str(refused.value)


@pytest.mark.parametrize("reason", ["", "   ", "\t\n"])
def test_a_blank_reason_is_no_reason(reason: str) -> None:
    with pytest.raises(RuleViolation) as refused:
        past_due_accepted("2026-11-30", TODAY, reason)
    assert refused.value.rule == "R5"


def test_a_past_date_with_a_reason_keeps_the_reason_trimmed() -> None:
    assert past_due_accepted("2026-11-30", TODAY, "  Recorded late  ") == "Recorded late"


def test_without_today_nothing_is_checked() -> None:
    assert past_due_accepted("1999-01-01", None, None) is None
