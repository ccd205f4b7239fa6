"""Vocabularies and pure helpers of the quality domain (SPEC §1)."""

from __future__ import annotations

import datetime as dt

import pytest

from capa.domain.errors import CapaError, InvalidInput, RuleViolation
from capa.domain.values import (
    AMENDABLE_NC_FIELDS,
    ActionType,
    CAStatus,
    CauseCategory,
    Disposition,
    NCStatus,
    RootCauseMethod,
    Severity,
    Source,
    choice,
    parse_date,
    require_text,
    risk_level,
)


@pytest.mark.parametrize(
    ("enum", "words"),
    [
        (Source, {"customer-complaint", "internal-audit", "external-audit", "supplier",
                  "process", "product", "regulatory-inspection", "other"}),
        (Severity, {"minor", "major", "critical"}),
        (Disposition, {"quarantine", "rework", "scrap", "use-as-is", "return-to-supplier",
                       "none"}),
        (RootCauseMethod, {"5-whys", "ishikawa", "8d", "fault-tree", "other"}),
        (CauseCategory, {"man", "machine", "method", "material", "measurement",
                         "environment"}),
        (ActionType, {"correction", "corrective", "preventive"}),
        (NCStatus, {"open", "contained", "assessed", "linked", "closed", "cancelled"}),
        (CAStatus, {"open", "investigated", "planned", "approved", "implemented", "verified",
                    "closed", "cancelled"}),
    ],
)
def test_vocabularies_are_exactly_those_of_the_spec(enum: type, words: set[str]) -> None:
    assert {member.value for member in enum} == words


def test_amendable_fields_are_exactly_those_of_the_spec() -> None:
    # SPEC §1's list, and detected_on: an imported date read wrongly is corrected with a reason.
    assert set(AMENDABLE_NC_FIELDS) == {
        "title", "description", "product", "lot", "severity", "source", "external_ref",
        "detected_on"}


@pytest.mark.parametrize(
    ("score", "level"),
    [(1, "low"), (4, "low"), (5, "medium"), (9, "medium"), (10, "high"), (16, "high"),
     (17, "critical"), (25, "critical")],
)
def test_risk_level_boundaries(score: int, level: str) -> None:
    assert risk_level(score) == level


def test_choice_accepts_a_vocabulary_word() -> None:
    assert choice(Severity, "major", "severity") is Severity.MAJOR


def test_choice_refuses_an_unknown_word_naming_the_allowed_ones() -> None:
    with pytest.raises(InvalidInput) as refused:
        choice(Severity, "catastrophic", "severity")
    message = str(refused.value)
    assert "severity" in message
    assert "catastrophic" in message
    for word in ("minor", "major", "critical"):
        assert word in message
    assert refused.value.rule is None


@pytest.mark.parametrize("value", ["2026-02-28", "2024-02-29", "2000-01-01"])
def test_parse_date_accepts_iso_dates(value: str) -> None:
    assert parse_date(value, "due") == dt.date.fromisoformat(value)


@pytest.mark.parametrize("value", ["2026-1-1", "2026-01-01T10:00", "2026-01-01 10:00:00Z",
                                   " 2026-01-01 "])
def test_parse_date_reads_unpadded_iso_and_ignores_a_time_of_day(value: str) -> None:
    """Year first is never followed by the day, so `2026-1-1` is unambiguous; the import reads
    the same values the same way (capa.domain.dates)."""
    assert parse_date(value, "due") == dt.date(2026, 1, 1)


@pytest.mark.parametrize(
    "value",
    ["2026-02-30", "2026-13-01", "26-01-01", "2026/01/01", "20260101", "", "01/02/2026",
     "tomorrow", "2026-01-01T25:00", "2026-001-01", "٢٠٢٦-٠١-٠١"],
)
def test_parse_date_refuses_anything_but_yyyy_mm_dd(value: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_date(value, "due")
    assert "due" in str(refused.value)
    assert "YYYY-MM-DD" in str(refused.value)


def test_require_text_strips_and_refuses_blank() -> None:
    assert require_text("  Cracked housing \n", "title") == "Cracked housing"
    for blank in ("", "   ", "\t\n", None):
        with pytest.raises(InvalidInput, match="title must not be empty"):
            require_text(blank, "title")


def test_rule_violations_name_their_rule_in_the_message() -> None:
    error = RuleViolation("R2", "the approver must not be the CA owner")
    assert isinstance(error, CapaError)
    assert error.rule == "R2"
    assert str(error) == "refused (R2): the approver must not be the CA owner"
    assert str(InvalidInput("bad")) == "bad"
