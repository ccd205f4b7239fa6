"""When two nonconformities read as the same problem (SPEC §12, ISO 9001 10.2.1 b: "determining
if similar nonconformities exist"): the same product and a similar title.

- **Same product**: both name a product, and the names are equal once surrounding spaces are
  removed and the case of the letters A-Z is ignored (`Pouch P-10` = `pouch p-10`; other
  letters compare as written, as SQLite's LOWER() does, so the read tables agree).
- **Similar title**: the Jaccard similarity of the titles' word sets is at least 0.5 (the words
  both share, over the words either has). A title's words are its runs of letters and digits,
  in lower case, with a plain English ending folded (`-ing`, `-ed`, `-es`, and `-s` but not
  `-ss`, so `cracks`, `cracked` and `crack` are one word); words shorter than three characters
  and a few common function words (`the`, `and`, `for`, …) are left out. Two titles with no
  such word are similar only when they are equal, case aside.

    similar_title("Seal strength low on pouch", "Low seal strength")   # 3 of 4 words: True
    similar_title("Cracked housing", "Housing cracks at boss")         # 2 of 3 words: True
    similar_title("Cracked housing", "Label smudged")                  # False
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable

__all__ = ["THRESHOLD", "same_product", "similar", "similar_title", "similar_to",
           "title_similarity", "title_words"]

#: The least Jaccard similarity of two titles' words for them to be similar.
THRESHOLD = 0.5
_MIN_LENGTH = 3
_WORD = re.compile(r"[^\W_]+")
_FUNCTION_WORDS = frozenset({"the", "and", "for", "with", "from", "not", "are", "was", "were",
                             "has", "have", "had", "its", "into", "onto", "off", "out", "but",
                             "all", "any", "per", "via"})
_ENDINGS = ("ing", "ed", "es", "s")
_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def _folded(word: str) -> str:
    if word[-1] not in "sdg":  # no ending to fold: most words
        return word
    for ending in _ENDINGS:
        if word.endswith(ending) and len(word) - len(ending) >= _MIN_LENGTH \
                and not (ending == "s" and word.endswith("ss")):
            return word[: -len(ending)]
    return word


def title_words(title: str) -> frozenset[str]:
    """The words of a title that similarity counts."""
    return frozenset(_folded(w) for w in _WORD.findall(title.casefold())
                     if len(w) >= _MIN_LENGTH and w not in _FUNCTION_WORDS)


def title_similarity(a: str, b: str) -> float:
    """Jaccard similarity of two titles' words, 0.0 to 1.0."""
    left, right = title_words(a), title_words(b)
    if not left or not right:
        return 1.0 if a.strip().casefold() == b.strip().casefold() and a.strip() else 0.0
    return len(left & right) / len(left | right)


def similar_title(a: str, b: str) -> bool:
    return title_similarity(a, b) >= THRESHOLD


def similar_to(title: str) -> Callable[[str], bool]:
    """`similar_title(title, other)` as a test of `other`, the words of `title` found once (a
    raise compares its title with every open NC of the product)."""
    words = title_words(title)
    plain = title.strip().casefold()

    def test(other: str) -> bool:
        if not words:
            return bool(plain) and other.strip().casefold() == plain
        theirs = title_words(other)
        if not theirs:
            return False
        shared = len(words & theirs)
        return shared > 0 and shared / (len(words) + len(theirs) - shared) >= THRESHOLD

    return test


def same_product(a: str | None, b: str | None) -> bool:
    left, right = (a or "").strip().translate(_ASCII_LOWER), (b or "").strip().translate(
        _ASCII_LOWER)
    return bool(left) and left == right


def similar(product_a: str | None, title_a: str, product_b: str | None, title_b: str) -> bool:
    """Whether two NCs read as the same problem: same product and similar title."""
    return same_product(product_a, product_b) and similar_title(title_a, title_b)
