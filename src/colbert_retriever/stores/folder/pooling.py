"""Token pooling at index time: fewer vectors per document, by merging similar ones.

A document of n token vectors keeps ceil(n / pool_factor): its tokens are clustered (k-means
with cosine similarity, a few iterations, seeded by farthest-point traversal) and each cluster
is replaced by its normalised mean. Index size and search work shrink by ~pool_factor; the
cost in quality is measured in benchmarks/README.md. PyLate pools with hierarchical
clustering; k-means is batched here over many documents at once, with no loop per document.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

_DOCS_PER_STEP = 256
_ITERATIONS = 5


def pool_tokens(vectors: Sequence[np.ndarray], pool_factor: int) -> list[np.ndarray]:
    """Each (n, dim) array of unit vectors reduced to (ceil(n / pool_factor), dim) unit vectors.

    >>> x = np.array([[1, 0], [0.96, 0.28], [0, 1], [0.28, 0.96]], dtype=np.float32)
    >>> pool_tokens([x], 2)[0].astype(np.float64).round(2).tolist()  # the pair near [1, 0], the pair near [0, 1]
    [[0.99, 0.14], [0.14, 0.99]]
    """
    if pool_factor == 1:
        return list(vectors)
    out: list[np.ndarray] = []
    for start in range(0, len(vectors), _DOCS_PER_STEP):
        out.extend(_pool_batch(vectors[start : start + _DOCS_PER_STEP], pool_factor))
    return out


def _pool_batch(vectors: Sequence[np.ndarray], pool_factor: int) -> list[np.ndarray]:
    lengths = torch.tensor([len(v) for v in vectors])
    keep = (lengths + pool_factor - 1) // pool_factor  # clusters per document
    x = torch.nn.utils.rnn.pad_sequence(
        [torch.from_numpy(np.asarray(v, np.float32)) for v in vectors], batch_first=True
    )
    n_docs, max_len, _ = x.shape
    valid = torch.arange(max_len)[None, :] < lengths[:, None]  # (n_docs, max_len) real tokens
    slots = torch.arange(int(keep.max()))
    live = slots[None, :] < keep[:, None]  # (n_docs, max_clusters) real clusters
    # farthest-point seeds: token 0, then repeatedly the token least similar to every seed so far
    seeds = torch.zeros(n_docs, len(slots), dtype=torch.long)
    closest = torch.einsum("bld,bd->bl", x, x[:, 0]).masked_fill(~valid, torch.inf)
    for slot in range(1, len(slots)):
        seeds[:, slot] = torch.where(live[:, slot], closest.argmin(dim=1), 0)
        chosen = x[torch.arange(n_docs), seeds[:, slot]]
        closest = torch.maximum(closest, torch.einsum("bld,bd->bl", x, chosen))
    centres = torch.gather(x, 1, seeds[:, :, None].expand(-1, -1, x.shape[2]))
    for _ in range(_ITERATIONS):
        sims = torch.einsum("bld,bkd->blk", x, centres).masked_fill(~live[:, None, :], -torch.inf)
        members = torch.nn.functional.one_hot(sims.argmax(dim=2), len(slots)).to(x.dtype) * valid[..., None]
        sums = torch.einsum("blk,bld->bkd", members, x)
        empty = members.sum(dim=1) == 0  # keep an empty cluster's centre where it was
        centres = torch.where(empty[..., None], centres, torch.nn.functional.normalize(sums, dim=2))
    return [centres[i, : int(keep[i])].numpy().copy() for i in range(n_docs)]
