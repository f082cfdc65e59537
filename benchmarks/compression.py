"""What a PLAID build spends after encoding, with the IVF assignment and with exact assignment.

Usage: python benchmarks/compression.py --index IDX [--centroids 16384] [--seed 0]

Takes the token vectors of a built index (decompressed if it is a plaid index), then, one
after the other in this process, trains a codec on a random sample of 16 tokens per centroid
(k-means with 4 iterations, as a build runs it, then the residual codewords) and assigns
every token to a centroid: first as a build does (from 16,384 centroids on, through an IVF
over them), then comparing every token with every centroid (as before the IVF). Prints the
seconds of each step, how often the IVF found the exact nearest centroid, the similarity
it lost, and the ratios; asserts nothing. FAISS picks its SIMD code at run time:
FAISS_SIMD_LEVEL=AVX2 (and OPENBLAS_CORETYPE=Haswell for its BLAS) times an AVX2 CPU's code.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np
import torch

from colbert_retriever.stores.folder import codec as codec_module
from colbert_retriever.stores.folder.codec import ResidualCodec
from colbert_retriever.stores.folder.compression import token_vectors
from colbert_retriever.stores.folder.index import Index

KMEANS_ITERS = 4  # PlaidConfig.kmeans_iters
TOKENS_PER_CENTROID = 16  # compression._train's sample


def index_tokens(path: Path) -> np.ndarray:
    """(n_tokens, dim) float32: every token vector of the index at `path`."""
    snapshot = Index.open(path)._snapshot
    parts = []
    for segment in snapshot.segments:
        n_tokens = int(segment.offsets[-1])
        for start in range(0, n_tokens, 1 << 16):
            tokens = np.arange(start, min(start + (1 << 16), n_tokens))
            parts.append(token_vectors(segment, tokens, snapshot.codec))
    return np.concatenate(parts)


@dataclass
class Build:
    """One codec's training and assignment of every token, timed."""

    kmeans_s: float
    codewords_s: float  # the rest of training: residuals of the sample, codewords
    assign_s: float
    codec: ResidualCodec
    codes: np.ndarray
    scores: np.ndarray

    @property
    def total_s(self) -> float:
        return self.kmeans_s + self.codewords_s + self.assign_s


def timed_build(sample: np.ndarray, tokens: np.ndarray, n_centroids: int, seed: int) -> Build:
    kmeans, spent = codec_module.kmeans, [0.0]

    def timed_kmeans(sample: np.ndarray, n_centroids: int, *, seed: int, niter: int) -> np.ndarray:
        start = time.perf_counter()
        centroids = kmeans(sample, n_centroids, seed=seed, niter=niter)
        spent[0] += time.perf_counter() - start
        return centroids

    codec_module.kmeans = timed_kmeans
    try:
        start = time.perf_counter()
        codec = ResidualCodec.train(sample, n_centroids=n_centroids, nbits=2, seed=seed, niter=KMEANS_ITERS)
        train_s = time.perf_counter() - start
    finally:
        codec_module.kmeans = kmeans
    start = time.perf_counter()
    codes, scores = codec.assign(tokens)
    return Build(spent[0], train_s - spent[0], time.perf_counter() - start, codec, codes, scores)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--centroids", type=int, default=1 << 14)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    tokens = index_tokens(args.index)
    rng = np.random.default_rng(args.seed)
    sample = tokens[rng.choice(len(tokens), min(len(tokens), TOKENS_PER_CENTROID * args.centroids), replace=False)]
    print(
        f"CPU capability: {torch.backends.cpu.get_cpu_capability()}, FAISS {faiss.__version__} "
        f"({faiss.get_compile_options().strip()}), {faiss.omp_get_max_threads()} threads; "
        f"{len(tokens):,} tokens of dim {tokens.shape[1]}, {args.centroids:,} centroids, sample {len(sample):,}"
    )
    ivf = timed_build(sample, tokens, args.centroids, args.seed)
    print(f"assignment: {type(ivf.codec._centroid_index).__name__} against IndexFlatIP\n")
    threshold = codec_module._IVF_CENTROIDS
    codec_module._IVF_CENTROIDS = 1 << 62  # every token against every centroid, as before
    try:
        exact = timed_build(sample, tokens, args.centroids, args.seed)
        best, best_scores = codec_module._nearest(tokens, codec_module._filled_index(ivf.codec.centroids))
    finally:
        codec_module._IVF_CENTROIDS = threshold
    print("| step | IVF, s | exact, s | ratio |\n|---|---|---|---|")
    for step in ("kmeans_s", "codewords_s", "assign_s", "total_s"):
        fast, slow = getattr(ivf, step), getattr(exact, step)
        print(f"| {step[:-2]} | {fast:.1f} | {slow:.1f} | {slow / fast:.2f}x |")
    same, lost = np.mean(ivf.codes == best), np.mean(best_scores - ivf.scores)
    print(f"\nIVF assignment: the exact nearest centroid for {same:.2%} of tokens, similarity lost {lost:.4f}")
    print(
        f"mean similarity of a token to its centroid: {np.mean(ivf.scores):.4f} (k-means and assignment through "
        f"the IVF), {np.mean(exact.scores):.4f} (exact)"
    )


if __name__ == "__main__":
    main()
