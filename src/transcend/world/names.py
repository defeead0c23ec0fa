"""Unique, pronounceable fictional names, drawn from a seeded generator.

Hand-written because no maintained library makes deterministic, seedable,
collision-free fictional names in bulk; the syllable grammar is a few lines.
"""

from __future__ import annotations

import numpy as np

_ONSETS = ["b", "br", "d", "dr", "f", "g", "gr", "h", "k", "kl", "l", "m", "n", "p", "pr",
           "r", "s", "st", "t", "tr", "v", "z", "sh", "th", "ch", "j", "w", "y", "c", "cr"]
_VOWELS = ["a", "e", "i", "o", "u", "ai", "ea", "io", "ou", "ae"]
_CODAS = ["", "", "", "n", "r", "l", "s", "m", "th", "rk", "nd", "x", "st", "v"]

# Per-type flavour: (syllable range, optional suffixes appended to the stem, optional word
# patterns). "{}" is a generated word; several words give multi-word names.
_STYLES: dict[str, tuple[tuple[int, int], list[str], list[str]]] = {
    "person": ((2, 3), [""], ["{} {}", "{} {}", "{} {}", "{} {} {}"]),
    "country": ((2, 3), ["ia", "land", "ora", "istan", "ar"], ["{}"]),
    "city": ((2, 3), ["", "", "burg", "ford", "polis", "mar"], ["{}", "{}", "Port {}", "San {}"]),
    "continent": ((3, 4), ["ica", "esia", "opa"], ["{}"]),
    "language": ((2, 3), ["ish", "ese", "ic", "an"], ["{}"]),
    "occupation": ((2, 3), ["ist", "er", "smith", "wright"], ["{}"]),
    "organisation": ((2, 3), [""], ["{} Group", "{} Institute", "{} Company", "{} Guild", "{} Works"]),
    "university": ((2, 3), [""], ["University of {}", "{} College", "{} Academy"]),
    "award": ((2, 3), [""], ["{} Prize", "{} Medal", "{} Award", "Order of {}"]),
    "religion": ((2, 3), ["ism", "ity"], ["{}"]),
    "party": ((2, 3), [""], ["{} Party", "{} Union", "{} Front"]),
    "genre": ((2, 3), ["core", "wave", "ism"], ["{}"]),
    "sport": ((2, 3), ["ball", "", "ing"], ["{}"]),
    "instrument": ((2, 3), ["phone", "lin", "horn"], ["{}"]),
    "film": ((2, 3), [""], ["{} {}", "The {}", "{} Rising", "Return of {}"]),
    "book": ((2, 3), [""], ["The {} of {}", "{} {}", "Tales of {}"]),
    "currency": ((2, 3), ["o", "ar", "en"], ["{}"]),
    "industry": ((2, 3), ["tics", "ery", "ing"], ["{}"]),
}

RESERVED = frozenset({"The", "What", "Who", "Which", "Its", "It", "His", "Her", "Their"})


def _word(rng: np.random.Generator, lo: int, hi: int, suffix: str) -> str:
    n = int(rng.integers(lo, hi + 1))
    parts = []
    for i in range(n):
        parts.append(_ONSETS[rng.integers(len(_ONSETS))] + _VOWELS[rng.integers(len(_VOWELS))])
        if i == n - 1 and not suffix:
            parts.append(_CODAS[rng.integers(len(_CODAS))])
    return ("".join(parts) + suffix).capitalize()


def fictional_names(type_name: str, count: int, rng: np.random.Generator, taken: set[str]) -> list[str]:
    """Return ``count`` new names for entities of ``type_name``, none in ``taken`` (which is updated)."""
    (lo, hi), suffixes, patterns = _STYLES.get(type_name, ((2, 3), [""], ["{}"]))
    out: list[str] = []
    tries = 0
    while len(out) < count:
        tries += 1
        if tries > 200 * count + 1000:
            raise RuntimeError(f"could not draw {count} unique {type_name} names")
        pattern = patterns[rng.integers(len(patterns))]
        suffix = suffixes[rng.integers(len(suffixes))]
        words = [_word(rng, lo, hi, suffix if j == 0 else "") for j in range(pattern.count("{}"))]
        name = pattern.format(*words)
        if name in taken or any(w in RESERVED for w in words):
            continue
        taken.add(name)
        out.append(name)
    return out
