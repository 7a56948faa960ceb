"""Pick the most consistent of several free-form answers when they cannot be parsed and voted on.

Self-consistency votes on extracted answers; for open-ended responses (an explanation, a name with
variations) there is nothing exact to count. The fallback is a lexical medoid: the candidate whose
wording overlaps most, on average, with every other candidate. It stands for the answer the samples
agree on, the way the majority does when answers can be voted on.

Similarity is F1 over the multiset of lower-cased word unigrams and bigrams: unigrams reward shared
content, bigrams reward shared phrasing, and F1 keeps a long rambling candidate from matching everything.
It is cheap and needs no model, but it is blind to paraphrase: two correct answers in different words
score low. Scores are kept as exact fractions so that genuinely tied candidates tie, and the earliest
one wins, whatever order the sums were taken in.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from fractions import Fraction

_WORD = re.compile(r"\w+")


def most_consistent(texts: Sequence[str]) -> int:
    """Index of the candidate most similar on average to the others; ties go to the lowest index.

    One text -> 0. Raises ValueError on an empty sequence.
    """
    if not texts:
        raise ValueError("most_consistent needs at least one candidate")
    grams = [_ngrams(text) for text in texts]
    totals = [Fraction(0)] * len(texts)
    for i in range(len(texts)):
        for j in range(i + 1, len(texts)):
            score = _f1(grams[i], grams[j])
            totals[i] += score
            totals[j] += score
    # Every candidate is compared with the same number of others, so the largest total is the largest mean.
    return max(range(len(texts)), key=lambda i: (totals[i], -i))


def similarity(a: str, b: str) -> float:
    """Unigram+bigram F1 between two texts, from 0.0 (nothing shared, or either has no words) to 1.0."""
    return float(_f1(_ngrams(a), _ngrams(b)))


def _ngrams(text: str) -> Counter[tuple[str, ...]]:
    words = _WORD.findall(text.lower())
    return Counter([(word,) for word in words] + list(zip(words, words[1:], strict=False)))


def _f1(a: Counter[tuple[str, ...]], b: Counter[tuple[str, ...]]) -> Fraction:
    # F1 = 2PR / (P + R) with P = overlap/|a| and R = overlap/|b| simplifies to 2 * overlap / (|a| + |b|).
    size = a.total() + b.total()
    if not size:
        return Fraction(0)
    return Fraction(2 * (a & b).total(), size)
