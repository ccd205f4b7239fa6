"""How a legacy register's words are read: effectiveness verdicts only where plain."""

from __future__ import annotations

import pytest

from capa.app.migration import STATUS_WORDS, _effective


@pytest.mark.parametrize(("text", "verdict"), [
    ("Effective", True), ("effective - no recurrence", True), ("Yes", True), ("y", True),
    ("verified", True), ("Not effective", False), ("ineffective, reopened", False),
    ("No", False), ("failed", False), ("No recurrence in 3 months", None),
    ("Effectiveness pending", None), ("Эффективно", None), ("", None), (None, None),
])
def test_effectiveness_is_a_verdict_only_where_the_register_says_so(
        text: str | None, verdict: bool | None) -> None:
    assert _effective(text) is verdict


def test_status_words_map_only_onto_the_three_legacy_states() -> None:
    assert set(STATUS_WORDS.values()) == {"open", "closed", "cancelled"}
    assert "state" not in STATUS_WORDS and "terminated" not in STATUS_WORDS
