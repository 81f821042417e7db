"""Hard debiasing of word vectors (Bolukbasi et al. 2016, "Man is to Computer Programmer as
Woman is to Homemaker?").

1. **Gender direction** ``g``: the first principal component of the definitional pairs
   (she-he, her-his, woman-man, ...), each pair centred on its mean, on unit vectors.
2. **Neutralise**: every word that is not gender-specific by definition loses its component
   along ``g`` and is scaled back to length 1: ``w := (w - (w.g) g) / |w - (w.g) g|``.
3. **Equalise**: each equality pair (man-woman, king-queen, ...) is moved so that its two
   words differ only along ``g`` and are equidistant from every neutralised word:
   ``w := nu + sqrt(1 - |nu|^2) (w_g - mu_g) / |w_g - mu_g|`` with ``mu`` the pair's mean,
   ``mu_g`` its part along ``g``, ``nu = mu - mu_g``.

The gender-specific words that are left alone are :data:`GENDER_SPECIFIC` (a seed list in the
paper's spirit; the paper grows its list with a classifier). All vectors come out of
:func:`debias` with length 1, as in the paper. The measure is each word's projection
``cos(w, g)`` on the direction (:func:`projections`), and the mean absolute value over the
neutral words (the paper's direct bias with c = 1, :func:`direct_bias`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from nmt.embeddings.vectors import WordVectors

DEFINITIONAL_PAIRS = (
    ("woman", "man"),
    ("girl", "boy"),
    ("she", "he"),
    ("mother", "father"),
    ("daughter", "son"),
    ("gal", "guy"),
    ("female", "male"),
    ("her", "his"),
    ("herself", "himself"),
    ("mary", "john"),
)
EQUALITY_PAIRS = (
    ("woman", "man"),
    ("women", "men"),
    ("girl", "boy"),
    ("girls", "boys"),
    ("she", "he"),
    ("her", "his"),
    ("herself", "himself"),
    ("mother", "father"),
    ("mothers", "fathers"),
    ("daughter", "son"),
    ("daughters", "sons"),
    ("sister", "brother"),
    ("sisters", "brothers"),
    ("aunt", "uncle"),
    ("niece", "nephew"),
    ("queen", "king"),
    ("queens", "kings"),
    ("princess", "prince"),
    ("wife", "husband"),
    ("wives", "husbands"),
    ("bride", "groom"),
    ("female", "male"),
    ("females", "males"),
    ("lady", "gentleman"),
    ("ladies", "gentlemen"),
    ("madam", "sir"),
    ("mrs", "mr"),
    ("ms", "mr"),
    ("actress", "actor"),
    ("actresses", "actors"),
    ("heroine", "hero"),
    ("girlfriend", "boyfriend"),
    ("grandmother", "grandfather"),
    ("mom", "dad"),
    ("moms", "dads"),
    ("gal", "guy"),
    ("spokeswoman", "spokesman"),
    ("businesswoman", "businessman"),
    ("stepmother", "stepfather"),
    ("mum", "dad"),
    ("granddaughter", "grandson"),
    ("waitress", "waiter"),
)
GENDER_SPECIFIC = frozenset(
    {w for pair in DEFINITIONAL_PAIRS + EQUALITY_PAIRS for w in pair}
    | {
        "mary",
        "john",
        "feminine",
        "masculine",
        "motherhood",
        "fatherhood",
        "pregnant",
        "pregnancy",
        "womb",
        "sperm",
        "beard",
        "nun",
        "monk",
        "priest",
        "priestess",
        "widow",
        "widower",
        "maiden",
        "lad",
        "lads",
        "ma'am",
        "miss",
        "matriarch",
        "patriarch",
        "sorority",
        "fraternity",
        "schoolgirl",
        "schoolboy",
        "grandma",
        "grandpa",
        "mama",
        "papa",
        "daddy",
        "mommy",
        "wife's",
        "husband's",
        "fiancee",
        "fiance",
        "hers",
        "him",
        "womanhood",
        "manhood",
        "sisterhood",
        "brotherhood",
        "feminist",
        "feminism",
        "lesbian",
        "gay",
        "ovarian",
        "prostate",
        "menopause",
        "testosterone",
        "estrogen",
        "uterus",
        "congressman",
        "congresswoman",
        "chairman",
        "chairwoman",
        "countess",
        "count",
        "duchess",
        "duke",
        "empress",
        "emperor",
        "goddess",
        "god",
        "heiress",
        "heir",
        "hostess",
        "host",
        "landlady",
        "landlord",
        "mistress",
        "master",
        "stewardess",
        "steward",
        "witch",
        "wizard",
        "bachelor",
        "spinster",
        "boyhood",
        "girlhood",
    }
)
DEFAULT_NEUTRAL = (  # professions and roles used to show the effect (Bolukbasi et al.'s examples)
    "doctor",
    "nurse",
    "engineer",
    "programmer",
    "homemaker",
    "receptionist",
    "scientist",
    "teacher",
    "professor",
    "librarian",
    "surgeon",
    "secretary",
    "architect",
    "dancer",
    "boss",
    "hairdresser",
    "pilot",
    "maid",
    "soldier",
    "housekeeper",
    "lawyer",
    "designer",
    "manager",
    "babysitter",
    "genius",
    "beautiful",
    "brilliant",
    "emotional",
    "strong",
    "cooking",
    "football",
    "violence",
    "shopping",
)


def _unit(matrix: np.ndarray) -> np.ndarray:
    return matrix / np.maximum(np.linalg.norm(matrix, axis=-1, keepdims=True), 1e-12)


def gender_direction(vectors: WordVectors, pairs: Sequence[tuple[str, str]] = DEFINITIONAL_PAIRS) -> np.ndarray:
    """(dim,) unit vector: the first principal component of the centred definitional pairs,
    signed so that ``he`` (the second word of the pairs) lies on the positive side."""
    found = [(a, b) for a, b in pairs if a in vectors and b in vectors]
    if len(found) < 2:
        raise ValueError(
            f"the gender direction needs at least 2 definitional pairs in the vocabulary, found {len(found)} "
            f"of {', '.join('-'.join(p) for p in pairs)}"
        )
    unit = vectors.unit_vectors()
    rows = []
    for a, b in found:
        pair = unit[[vectors.index(a), vectors.index(b)]]
        rows.extend(pair - pair.mean(axis=0))
    _, _, components = np.linalg.svd(np.stack(rows), full_matrices=False)
    direction = components[0] / np.linalg.norm(components[0])
    signs = [float((unit[vectors.index(b)] - unit[vectors.index(a)]) @ direction) for a, b in found]
    return direction if sum(signs) >= 0 else -direction


def projections(vectors: WordVectors, words: Sequence[str], direction: np.ndarray) -> list[float]:
    """``cos(w, g)`` of each word: > 0 leans to the ``he`` side, < 0 to ``she``."""
    unit = vectors.unit_vectors()
    return [float(unit[vectors.index(word)] @ direction) for word in words]


def direct_bias(vectors: WordVectors, words: Sequence[str], direction: np.ndarray) -> float:
    """Mean ``|cos(w, g)|`` over the ``words`` that are in the vocabulary (direct bias, c = 1)."""
    known = [w for w in words if w in vectors]
    if not known:
        raise ValueError("none of the words is in the vocabulary")
    return float(np.mean(np.abs(projections(vectors, known, direction))))


def neutralise(matrix: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """(n, dim) unit rows without their component along the unit ``direction``, rescaled to 1."""
    return _unit(matrix - np.outer(matrix @ direction, direction))


def equalise(a: np.ndarray, b: np.ndarray, direction: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two unit vectors that differ only along ``direction``, symmetric about the neutral part
    of their mean (Bolukbasi et al.'s equalise step)."""
    mu = (a + b) / 2
    mu_g = (mu @ direction) * direction
    nu = mu - mu_g
    scale = np.sqrt(max(1.0 - float(nu @ nu), 0.0))
    out = []
    for w in (a, b):
        offset = (w @ direction) * direction - mu_g
        norm = float(np.linalg.norm(offset))
        out.append(nu + scale * offset / norm if norm > 1e-12 else nu + scale * direction * np.sign(w @ direction))
    return out[0], out[1]


def debias(
    vectors: WordVectors,
    *,
    definitional: Sequence[tuple[str, str]] = DEFINITIONAL_PAIRS,
    equality: Sequence[tuple[str, str]] = EQUALITY_PAIRS,
    gender_specific: frozenset[str] = GENDER_SPECIFIC,
) -> tuple[WordVectors, dict[str, Any]]:
    """Hard-debias ``vectors`` (neutralise, then equalise); return the new vectors (unit
    length, same words and order) and a report: ``direction``, ``neutralised`` (words),
    ``equalised`` (pairs found)."""
    direction = gender_direction(vectors, definitional)
    matrix = vectors.unit_vectors().copy()
    neutral = np.array([word.lower() not in gender_specific for word in vectors.words])
    matrix[neutral] = neutralise(matrix[neutral], direction)
    equalised = 0
    for a, b in equality:
        if a in vectors and b in vectors:
            i, j = vectors.index(a), vectors.index(b)
            matrix[i], matrix[j] = equalise(matrix[i], matrix[j], direction)
            equalised += 1
    debiased = WordVectors(list(vectors.words), matrix)
    return debiased, {"direction": direction, "neutralised": int(neutral.sum()), "equalised": equalised}
