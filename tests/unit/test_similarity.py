"""What makes two nonconformities similar (capa.domain.similarity): same product, similar title."""

from __future__ import annotations

import pytest

from capa.domain.similarity import (
    THRESHOLD,
    same_product,
    similar,
    similar_title,
    title_similarity,
    title_words,
)


def test_words_are_lower_case_long_enough_and_their_plain_endings_folded() -> None:
    assert title_words("Cracked HOUSING at boss B2, the 3rd lot") == {
        "crack", "hous", "boss", "3rd", "lot"}
    assert title_words("Cracks") == title_words("cracked") == title_words("crack")
    assert title_words("A of in on") == frozenset()


@pytest.mark.parametrize("a, b, expected", [
    ("Seal strength low on pouch", "Low seal strength", 0.75),
    ("Cracked housing", "Housing cracks at boss", 2 / 3),
    ("Cracked housing", "Label smudged", 0.0),
    ("Seal strength low", "Seal strength low", 1.0),
    ("Burr", "burr", 1.0),
    ("On", "on", 1.0),
    ("On", "At", 0.0),
])
def test_title_similarity_is_the_jaccard_index_of_the_words(a: str, b: str,
                                                            expected: float) -> None:
    assert title_similarity(a, b) == pytest.approx(expected)
    assert title_similarity(b, a) == pytest.approx(expected)


def test_half_the_words_in_common_is_enough_and_less_is_not() -> None:
    assert THRESHOLD == 0.5
    assert similar_title("Seal strength low", "Seal strength high")  # 2 of 4
    assert not similar_title("Seal strength low", "Seal width high")  # 1 of 5


def test_the_product_must_be_named_and_the_same_case_aside() -> None:
    assert same_product("Pouch P-10", " pouch p-10 ")
    assert not same_product("Pouch P-10", "Pouch P-11")
    assert not same_product(None, None) and not same_product("", "")
    assert similar("Pouch P-10", "Seal strength low", "POUCH P-10", "Low seal strength")
    assert not similar(None, "Seal strength low", None, "Seal strength low")
    assert not similar("Pouch P-10", "Seal strength low", "Tray T-2", "Seal strength low")


@pytest.mark.parametrize("a, b", [
    ("Seal strength low on pouch", "Low seal strength"), ("Seal strength low", "Seal width high"),
    ("Cracked housing", "Housing cracks at boss"), ("Burr", "burr"), ("On", "on"), ("On", "At"),
    ("", ""), ("Seal", "On"), ("On", "Seal"), ("Boss cracks", "Bos crack"),
])
def test_similar_to_answers_as_similar_title(a: str, b: str) -> None:
    from capa.domain.similarity import similar_to

    assert similar_to(a)(b) == similar_title(a, b)
