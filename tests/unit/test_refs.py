"""RecordRef: the reference of an NC or a CA, read leniently, written as given."""

from __future__ import annotations

import pytest

from capa.domain.errors import InvalidInput
from capa.domain.refs import RecordRef, has_prefix, is_ref, sort_key


def test_a_reference_is_read_into_its_parts() -> None:
    ref = RecordRef.parse("NC-2026-0001")
    assert (ref.prefix, ref.year, ref.number) == ("NC", 2026, 1)
    assert str(ref) == "NC-2026-0001"
    assert ref == RecordRef.new("NC", 2026, 1)


@pytest.mark.parametrize("text", [" nc-2026-0042 ", "Nc-2026-0042\n", "NC-2026-0042"])
def test_spaces_and_case_are_accepted(text: str) -> None:
    assert str(RecordRef.parse(text)) == "NC-2026-0042"
    assert str(RecordRef.parse(text, "NC")) == "NC-2026-0042"
    assert is_ref(text)


def test_the_number_keeps_the_digits_it_was_written_with() -> None:
    # The record id is derived from the text, so a re-padded number would name another record.
    assert str(RecordRef.parse("CA-2026-00042")) == "CA-2026-00042"
    assert RecordRef.parse("CA-2026-00042") != RecordRef.parse("CA-2026-0042")
    assert str(RecordRef.parse("CA-2031-123456")) == "CA-2031-123456"


@pytest.mark.parametrize(("number", "text"), [(1, "NC-2026-0001"), (9999, "NC-2026-9999"),
                                              (10_000, "NC-2026-10000")])
def test_a_new_reference_has_at_least_four_digits(number: int, text: str) -> None:
    assert str(RecordRef.new("NC", 2026, number)) == text


@pytest.mark.parametrize(("text", "prefix", "expected"), [
    ("NC-26-0001", None, "NC-YYYY-NNNN or CA-YYYY-NNNN"),
    ("NC-2026-001", None, "NC-YYYY-NNNN or CA-YYYY-NNNN"),
    ("XX-2026-0001", None, "NC-YYYY-NNNN or CA-YYYY-NNNN"),
    ("", None, "NC-YYYY-NNNN or CA-YYYY-NNNN"),
    ("CA-2026-0001", "NC", "NC-YYYY-NNNN"),
    ("NC-2026-0001", "CA", "CA-YYYY-NNNN"),
])
def test_what_is_not_a_reference_is_refused(text: str, prefix: str | None,
                                            expected: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        RecordRef.parse(text, prefix)
    assert str(refused.value) == f"{text!r} is not a record id (expected {expected})"
    assert prefix is not None or not is_ref(text)


def test_the_sort_key_orders_by_year_then_number() -> None:
    refs = ["NC-2026-10000", "NC-2025-9999", "NC-2026-0002", "NC-2026-9999"]
    ordered = sorted(refs, key=lambda text: RecordRef.parse(text).sort_key)
    assert ordered == ["NC-2025-9999", "NC-2026-0002", "NC-2026-9999", "NC-2026-10000"]
    assert [sort_key(text) for text in refs] == [RecordRef.parse(t).sort_key for t in refs]
    assert RecordRef.parse("NC-2026-0042").sort_key == 20260000042


def test_a_prefix_is_recognised_before_parsing() -> None:
    assert has_prefix(" nc-anything", "NC")
    assert not has_prefix("CA-2026-0001", "NC")
