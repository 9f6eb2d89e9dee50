"""The search phase's corpus holds what its queries claim: a word in 50 documents (under 100
hits) and one in 10% of them, among 20 to 40 words drawn from a vocabulary of 400."""

from __future__ import annotations

import random

from bench import search


def test_the_corpus_plants_a_rare_and_a_common_word() -> None:
    rng = random.Random(13)
    texts = [search.details(n, rng) for n in range(search.DOCUMENTS)]
    assert sum(search.RARE in t.split() for t in texts) == search.RARE_COUNT
    assert sum(search.COMMON in t.split() for t in texts) == search.DOCUMENTS // 10
    lengths = [len(t.split()) for t in texts]
    assert min(lengths) >= 20 and max(lengths) <= 42
    vocabulary = {w for t in texts[:2000] for w in t.split()} - {search.RARE, search.COMMON}
    assert 350 < len(vocabulary) <= 400
