"""Count-based word vectors: positive PMI of the co-occurrences, then a truncated SVD (LSA).

1. **Co-occurrences** within ``window`` tokens, both sides, each pair counting 1
   (:func:`nmt.embeddings.glove.count_cooccurrences` without distance weighting).
2. **PPMI** (Levy, Goldberg and Dagan 2015)::

       PMI(w, c) = log( P(w, c) / (P(w) * P_alpha(c)) ) = log( #(w, c) / (#(w) * P_alpha(c)) )
       PPMI = max(PMI, 0),   P_alpha(c) = #(c)^alpha / sum_c' #(c')^alpha

   (context distribution smoothing, ``alpha`` 0.75, as word2vec's negative sampling smooths
   its noise distribution). Only the non-zero co-occurrences are kept: the matrix stays sparse.
3. **Truncated SVD** of the sparse PPMI matrix, scikit-learn's randomized ``TruncatedSVD``
   (a maintained, tested solver; ``scipy``'s sparse matrix holds the PPMI values), and the
   vectors ``U * S^p`` (``p`` 0.5, symmetric weighting: Levy et al. find ``p`` = 1, the
   textbook LSA, does worse on similarity).
"""

from __future__ import annotations

import numpy as np
import torch

from nmt.embeddings.glove import Cooccurrences


def ppmi(cooccurrences: Cooccurrences, alpha: float = 0.75) -> Cooccurrences:
    """The positive PMI of each non-zero co-occurrence; entries with PMI <= 0 are dropped.

    :param alpha: context distribution smoothing exponent (1 = plain PMI).
    """
    if not 0.0 < alpha <= 1.0:
        raise ValueError(f"alpha must be in (0, 1], got {alpha}")
    counts = cooccurrences.counts.double()
    size = cooccurrences.vocab_size
    word_counts = torch.zeros(size, dtype=torch.float64).index_add_(0, cooccurrences.rows, counts)
    context_counts = torch.zeros(size, dtype=torch.float64).index_add_(0, cooccurrences.cols, counts)
    smoothed = context_counts.pow(alpha)
    context_probability = smoothed / smoothed.sum()
    pmi = torch.log(counts / (word_counts[cooccurrences.rows] * context_probability[cooccurrences.cols]))
    keep = pmi > 0
    return Cooccurrences(
        cooccurrences.rows[keep], cooccurrences.cols[keep], pmi[keep].float(), cooccurrences.vocab_size
    )


def lsa_vectors(matrix: Cooccurrences, dim: int, *, power: float = 0.5, seed: int = 0) -> np.ndarray:
    """(vocab, dim) float32 vectors ``U_dim * S_dim^power`` of the sparse ``matrix`` (PPMI values).

    Rows of words without any entry are zero. ``dim`` must be below the vocabulary size.
    """
    from scipy.sparse import csr_matrix
    from sklearn.decomposition import TruncatedSVD

    size = matrix.vocab_size
    if not 0 < dim < size:
        raise ValueError(f"dim must be between 1 and the vocabulary size - 1 ({size - 1}), got {dim}")
    sparse = csr_matrix(
        (matrix.counts.numpy().astype(np.float64), (matrix.rows.numpy(), matrix.cols.numpy())), shape=(size, size)
    )
    svd = TruncatedSVD(n_components=dim, algorithm="randomized", n_iter=7, random_state=seed)
    reduced = svd.fit_transform(sparse)  # U * S
    singular = svd.singular_values_
    scale = np.where(singular > 0, singular ** (power - 1.0), 0.0)  # U * S^power = (U * S) * S^(power - 1)
    return (reduced * scale).astype(np.float32)
