from __future__ import annotations

import sys

import numpy as np
import pytest

from colbert_retriever import ConfigError, MissingDependencyError
from colbert_retriever.stores.folder import codec as codec_module
from colbert_retriever.stores.folder.codec import ResidualCodec, _pack, _unpack


def clustered(n: int, dim: int = 64, n_clusters: int = 32, spread: float = 0.3, seed: int = 0) -> np.ndarray:
    """Unit vectors scattered around random unit cluster centres, like token embeddings."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_clusters, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    x = centres[rng.integers(0, n_clusters, n)] + spread * rng.standard_normal((n, dim)) / np.sqrt(dim)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.mark.parametrize("nbits", [1, 2, 4])
def test_pack_round_trip(nbits: int) -> None:
    rng = np.random.default_rng(nbits)
    buckets = rng.integers(0, 1 << nbits, size=(7, 24)).astype(np.uint8)
    packed = _pack(buckets, nbits)
    assert packed.shape == (7, 24 * nbits // 8)
    np.testing.assert_array_equal(_unpack(packed, nbits, 24), buckets)


def test_reconstruction_improves_with_nbits_and_beats_centroids_alone() -> None:
    data = clustered(42_000)
    train, test = data[:40_000], data[40_000:]
    quality = {}
    for nbits in (1, 2, 4):
        codec = ResidualCodec.train(train, n_centroids=64, nbits=nbits, seed=0)
        codes, residuals = codec.encode(test)
        assert codes.dtype == np.int32
        assert residuals.dtype == np.uint8
        decoded = codec.decode(codes, residuals)
        quality[nbits] = float(np.mean(np.sum(decoded * test, axis=1)))  # mean cosine
        centroid_only = float(np.mean(np.sum(codec.centroids[codes] * test, axis=1)))
        assert quality[nbits] > centroid_only
    assert quality[1] < quality[2] < quality[4]
    assert quality[2] > 0.99  # measured 0.984, 0.994, 0.999 for 1, 2, 4 bits; centroids alone 0.959


def test_bucket_cutoffs_split_residuals_evenly() -> None:
    train = clustered(10_000)
    codec = ResidualCodec.train(train, n_centroids=32, nbits=2, codewords=False)
    assert codec.buckets is not None
    _, residuals = codec.encode(train)
    counts = np.bincount(_unpack(residuals, 2, train.shape[1]).ravel(), minlength=4) / train.size
    np.testing.assert_allclose(counts, 0.25, atol=0.01)  # quantile buckets: a quarter each
    assert np.all(np.diff(codec.buckets[:3]) > 0)
    assert np.all(np.diff(codec.buckets[3:]) > 0)


def test_codewords_reconstruct_better_than_buckets_at_the_same_size() -> None:
    data = clustered(42_000, dim=128, spread=0.6)
    train, test = data[:40_000], data[40_000:]
    errors = {}
    for codewords in (True, False):
        codec = ResidualCodec.train(train, n_centroids=64, nbits=2, codewords=codewords)
        assert (codec.buckets is None) == codewords
        codes, residuals = codec.encode(test)
        assert residuals.shape == (len(test), 32)
        errors[codewords] = float(np.mean(np.sum((codec.decode(codes, residuals) - test) ** 2, axis=1)))
    assert errors[True] < 0.9 * errors[False]


def test_small_samples_and_4_bits_get_buckets() -> None:
    assert ResidualCodec.train(clustered(2_000), n_centroids=16, nbits=2).buckets is not None
    assert ResidualCodec.train(clustered(40_000), n_centroids=16, nbits=4).buckets is not None


def test_bytes_per_token_at_nbits_2_and_dim_128() -> None:
    codec = ResidualCodec.train(clustered(2_000, dim=128), n_centroids=16, nbits=2)
    codes, residuals = codec.encode(clustered(10, dim=128))
    assert codes.itemsize + residuals.shape[1] == 36  # vs 256 bytes in float16


def test_same_seed_same_codec() -> None:
    sample = clustered(40_000)
    a = ResidualCodec.train(sample, n_centroids=16, seed=5)
    b = ResidualCodec.train(sample, n_centroids=16, seed=5)
    np.testing.assert_array_equal(a.centroids, b.centroids)
    np.testing.assert_array_equal(a.codebooks, b.codebooks)


def test_bad_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    sample = clustered(100, dim=12)
    with pytest.raises(ConfigError, match="nbits"):
        ResidualCodec.train(sample, n_centroids=4, nbits=3)
    with pytest.raises(ConfigError, match="multiple of 8"):
        ResidualCodec.train(sample, n_centroids=4, nbits=1)
    with pytest.raises(ConfigError, match="at least"):
        ResidualCodec.train(sample, n_centroids=500, nbits=2)
    monkeypatch.setitem(sys.modules, "faiss", None)
    with pytest.raises(MissingDependencyError, match="faiss-cpu"):
        ResidualCodec.train(sample, n_centroids=4, nbits=2)


@pytest.mark.parametrize("codewords", [True, False])
@pytest.mark.parametrize("nbits", [1, 2, 4])
def test_residual_values_in_float32_are_the_float16_values(nbits: int, codewords: bool) -> None:
    data = clustered(40_000)
    codec = ResidualCodec.train(data, n_centroids=32, nbits=nbits, seed=0, codewords=codewords)
    assert (codec.buckets is None) == (codewords and nbits < 4)
    _, residuals = codec.encode(data[:100])
    half, single = codec.residual_values(residuals), codec.residual_values(residuals, np.float32)
    assert (half.dtype, single.dtype) == (np.float16, np.float32)
    np.testing.assert_array_equal(half.astype(np.float32), single)
    per_byte = 8 // nbits
    for j in range(residuals.shape[1]):  # byte j holds dimensions j * per_byte ... (j + 1) * per_byte - 1
        expected = codec.codebooks[j, residuals[:, j]].astype(np.float16).astype(np.float32)
        np.testing.assert_array_equal(single[:, j * per_byte : (j + 1) * per_byte], expected)
    if not codewords:  # ColBERTv2's buckets: each dimension decodes to its bucket's value
        values = codec.buckets[(1 << nbits) - 1 :]
        expected = values[_unpack(residuals, nbits, codec.dim)].astype(np.float16).astype(np.float32)
        np.testing.assert_array_equal(single, expected)


@pytest.mark.parametrize("codewords", [True, False])
def test_a_saved_codec_reads_back_the_same(tmp_path, codewords: bool) -> None:
    data = clustered(40_000)
    codec = ResidualCodec.train(data, n_centroids=32, nbits=2, codewords=codewords)
    entry = codec.save(tmp_path / "codec", tokens_at_training=len(data))
    assert set(entry.files) == {"centroids.npy", "codebooks.npy" if codewords else "buckets.npy"}
    loaded = ResidualCodec.load(tmp_path / "codec", entry, verify=True)
    for a, b in zip(codec.encode(data[:50]), loaded.encode(data[:50]), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(codec.codebooks, loaded.codebooks)
    assert np.load(tmp_path / "codec" / "centroids.npy").dtype == np.float16  # k-means rounds them to half
    np.testing.assert_array_equal(codec.centroids, loaded.centroids)
    assert loaded.centroids.dtype == np.float32


def test_centroids_that_are_not_half_values_are_saved_in_float32(tmp_path) -> None:
    """Codecs trained before format 4 (float32 centroids) may grow and be saved again: their
    stored residuals were taken from the float32 centroids, which must not move."""
    data = clustered(2_000)
    codec = ResidualCodec.train(data, n_centroids=16, nbits=2)
    unrounded = data[:16] / np.linalg.norm(data[:16], axis=1, keepdims=True)
    old = ResidualCodec.from_buckets(unrounded, codec.buckets, 2, codec.outlier_score).with_centroids(codec.centroids)
    entry = old.save(tmp_path / "codec", tokens_at_training=len(data))
    assert np.load(tmp_path / "codec" / "centroids.npy").dtype == np.float32
    np.testing.assert_array_equal(ResidualCodec.load(tmp_path / "codec", entry, verify=False).centroids, old.centroids)


def test_many_centroids_are_searched_through_an_ivf_that_finds_nearly_the_exact_nearest() -> None:
    """From `_IVF_CENTROIDS` on, assignment probes 1/8 of an IVF's lists: an approximation,
    which must find the exact nearest centroid for nearly every token and score it exactly."""
    import faiss

    n_centroids = codec_module._IVF_CENTROIDS
    centroids = clustered(n_centroids, dim=32, n_clusters=512, spread=0.5, seed=1)
    tokens = clustered(20_000, dim=32, n_clusters=512, spread=0.5, seed=1)[::-1].copy()
    codec = ResidualCodec.from_buckets(centroids, np.zeros(7, np.float32), 2, -1.0)
    assert isinstance(codec._centroid_index, faiss.IndexIVFFlat)
    codes, scores = codec.assign(tokens)
    np.testing.assert_allclose(scores, np.sum(tokens * centroids[codes], axis=1), atol=1e-5)
    similarities = tokens @ centroids.T
    exact = similarities.argmax(axis=1)
    assert np.mean(codes == exact) > 0.95
    assert np.mean(similarities.max(axis=1) - scores) < 0.005
    assert codec.assign(tokens[:10])[0].tolist() == codes[:10].tolist()  # the cached index answers the same


def test_fewer_centroids_are_compared_with_every_token() -> None:
    import faiss

    codec = ResidualCodec.train(clustered(2_000), n_centroids=16, nbits=2)
    assert isinstance(codec._centroid_index, faiss.IndexFlatIP)
    tokens = clustered(500, seed=3)
    np.testing.assert_array_equal(codec.assign(tokens)[0], (tokens @ codec.centroids.T).argmax(axis=1))


def test_k_means_through_the_ivf_fits_as_well_as_exact_k_means(monkeypatch: pytest.MonkeyPatch) -> None:
    sample = clustered(3 * codec_module._IVF_CENTROIDS, dim=32, n_clusters=512, spread=0.5)

    def fit() -> float:
        centroids = codec_module.kmeans(sample, codec_module._IVF_CENTROIDS, seed=0, niter=4)
        np.testing.assert_allclose(np.linalg.norm(centroids, axis=1), 1.0, atol=1e-3)
        return float(np.mean((sample @ centroids.T).max(axis=1)))

    through_ivf = fit()
    monkeypatch.setattr(codec_module, "_IVF_CENTROIDS", codec_module._IVF_CENTROIDS + 1)
    exact = fit()
    assert through_ivf > exact - 0.005
