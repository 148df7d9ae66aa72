"""Word lists the bias diagnostics use, with where each comes from.

- DEFINITIONAL_PAIRS (female, male): Bolukbasi, Chang, Zou, Saligrama, Kalai (2016), "Man is to Computer Programmer
  as Woman is to Homemaker? Debiasing Word Embeddings", NeurIPS, Sec. 5 / Fig. 5 - their ten definitional pairs
  minus gal/guy. Each pair is (female word, male word); lookups fall back to lower case (GloVe is lower-cased).
- FEMALE_TERMS / MALE_TERMS (WEAT attribute sets): Caliskan, Bryson, Narayanan (2017), "Semantics derived
  automatically from language corpora contain human-like biases", Science 356(6334):183-186, supplementary
  material, WEAT 7 ("female terms" / "male terms").
- MATH_WORDS / ARTS_WORDS: the same paper, WEAT 7 target sets (Math vs Arts), kept as a published reference test
  (reported there: d = 1.06 on GloVe 840B common-crawl vectors, math-male association).
- CARE_WORDS / THINKING_WORDS: written for this project (not from a published WEAT). They contrast caring work
  (the stereotype around "nurse") with thinking/academic work (the stereotype around "philosopher"), in the spirit
  of the communal vs agentic/ability lexicons of Madera, Hebl, Martin (2009, J. Applied Psychology 94(6)) and
  Wan et al. (2023, "Kelly is a Warm Person, Joseph is a Role Model", Findings of EMNLP); the words themselves are
  this project's choice. "nurse" and "philosopher" are left out so that the test does not restate the words it
  puts in context. Every word is in GloVe 6B (checked by tests/test_embed_glove.py).
"""

from __future__ import annotations

DEFINITIONAL_PAIRS: tuple[tuple[str, str], ...] = (
    ("woman", "man"),
    ("girl", "boy"),
    ("she", "he"),
    ("mother", "father"),
    ("daughter", "son"),
    ("female", "male"),
    ("her", "his"),
    ("herself", "himself"),
    ("Mary", "John"),
)

FEMALE_TERMS: tuple[str, ...] = ("female", "woman", "girl", "sister", "she", "her", "hers", "daughter")
MALE_TERMS: tuple[str, ...] = ("male", "man", "boy", "brother", "he", "him", "his", "son")

MATH_WORDS: tuple[str, ...] = (
    "math",
    "algebra",
    "geometry",
    "calculus",
    "equations",
    "computation",
    "numbers",
    "addition",
)
ARTS_WORDS: tuple[str, ...] = ("poetry", "art", "dance", "literature", "novel", "symphony", "drama", "sculpture")

CARE_WORDS: tuple[str, ...] = (
    "caring",
    "nurturing",
    "compassion",
    "kindness",
    "gentle",
    "tender",
    "helping",
    "comfort",
    "nursing",
    "caregiver",
)
THINKING_WORDS: tuple[str, ...] = (
    "thinking",
    "reasoning",
    "logic",
    "intellect",
    "philosophy",
    "theory",
    "analysis",
    "scholar",
    "academic",
    "rational",
)

# name -> (targets X, targets Y, attributes A, attributes B). A positive effect size means X sits nearer A (female)
# than Y does, i.e. the stereotype direction.
WEAT_TESTS: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "care_vs_thinking": (CARE_WORDS, THINKING_WORDS, FEMALE_TERMS, MALE_TERMS),
    "caliskan_weat7_arts_vs_math": (ARTS_WORDS, MATH_WORDS, FEMALE_TERMS, MALE_TERMS),
}


def gendered_words() -> set[str]:
    """Lower-cased words that are gendered by definition (pairs + attribute sets): never neutralised or scaled."""
    words = {w for pair in DEFINITIONAL_PAIRS for w in pair} | set(FEMALE_TERMS) | set(MALE_TERMS)
    return {w.lower() for w in words}
