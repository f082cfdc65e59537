from __future__ import annotations

import dataclasses
import threading

import numpy as np
import pytest
import torch
from transformers import AutoTokenizer

from colbert_retriever import CheckpointError, ConfigError, Encoder

QUERIES = ["what is the capital of france?", "cat", "how does the late interaction search index work for a query"]
DOCS = ["the cat sat on the mat.", "paris, france: the eiffel tower!", "a " * 40 + "end", "dog"]


def _reference(folder, input_ids, attention_mask, linear):
    """A direct transformers forward pass, then the projection and L2 normalisation."""
    from transformers import BertModel

    model = BertModel.from_pretrained(folder).eval()
    with torch.no_grad():
        states = model(input_ids=input_ids, attention_mask=attention_mask)[0]
    return torch.nn.functional.normalize(states @ linear.T, dim=-1).numpy()


def test_query_layout_has_marker_and_mask_expansion(encoder: Encoder) -> None:
    tok = AutoTokenizer.from_pretrained(encoder.checkpoint.path)  # transformers, as the reference
    batch = encoder.tokenize(QUERIES, is_query=True)
    ids, mask = batch.input_ids, batch.attention_mask
    assert ids.shape == (3, 8)
    assert (ids[:, 0] == tok.cls_token_id).all()
    assert (ids[:, 1] == tok.convert_tokens_to_ids("[unused0]")).all()
    # "cat": [CLS] [Q] cat [SEP] then [MASK] padding, not attended, all kept
    assert ids[1, :4].tolist() == [tok.cls_token_id, 1, tok.convert_tokens_to_ids("cat"), tok.sep_token_id]
    assert (ids[1, 4:] == tok.mask_token_id).all()
    assert mask[1].tolist() == [1, 1, 1, 1, 0, 0, 0, 0]
    assert batch.keep.all()
    # the long query is truncated to 8 and still ends with [SEP]
    assert ids[2, -1] == tok.sep_token_id
    assert mask[2].all()


def test_document_layout_truncates_then_drops_punctuation(encoder: Encoder) -> None:
    tok = AutoTokenizer.from_pretrained(encoder.checkpoint.path)  # transformers, as the reference
    batch = encoder.tokenize(DOCS, is_query=False)
    punct = {tok.convert_tokens_to_ids(p) for p in ".,:!"}
    for row in range(len(DOCS)):
        kept = batch.input_ids[row][batch.keep[row]].tolist()
        assert kept[:2] == [tok.cls_token_id, tok.convert_tokens_to_ids("[unused1]")]
        assert kept[-1] == tok.sep_token_id
        assert not punct & set(kept)
    assert int(batch.attention_mask[2].sum()) == 12  # truncated to doc_maxlen
    # punctuation is attended to by the encoder even though its vector is dropped
    assert int(batch.attention_mask[1].sum()) == len(tok("paris, france: the eiffel tower!")["input_ids"]) + 1


def test_embeddings_match_a_direct_forward_pass(encoder: Encoder, checkpoints) -> None:
    linear = encoder.checkpoint.projection[0].weight
    batch = encoder.tokenize(QUERIES, is_query=True)
    expected = _reference(checkpoints["stanford"], batch.input_ids, batch.attention_mask, linear)
    got = encoder.encode_queries(QUERIES)
    for row in range(len(QUERIES)):
        np.testing.assert_allclose(got[row], expected[row], atol=1e-5)
    docs = encoder.encode_documents(DOCS)
    for row, text in enumerate(DOCS):
        single = encoder.tokenize([text], is_query=False)
        ref = _reference(checkpoints["stanford"], single.input_ids, single.attention_mask, linear)[0]
        np.testing.assert_allclose(docs[row], ref[single.keep[0].numpy()], atol=1e-5)
        np.testing.assert_allclose(np.linalg.norm(docs[row], axis=1), 1.0, atol=1e-5)


def test_stanford_and_pylate_formats_encode_identically(checkpoints) -> None:
    stanford = Encoder.from_pretrained(checkpoints["stanford"], show_progress=False)
    pylate = Encoder.from_pretrained(checkpoints["pylate"], show_progress=False)
    assert (stanford.checkpoint.format, pylate.checkpoint.format) == ("stanford", "pylate")
    # PyLate strips texts as sentence-transformers does (a no-op for WordPiece): the only difference
    assert pylate.config.strip
    assert not stanford.config.strip
    assert stanford.config.layout() == dataclasses.replace(pylate.config, strip=False).layout()
    for a, b in zip(stanford.encode_documents(DOCS), pylate.encode_documents(DOCS), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_plain_format_returns_normalised_token_states(checkpoints) -> None:
    enc = Encoder.from_pretrained(checkpoints["plain"], precision="float32", show_progress=False)
    assert enc.checkpoint.format == "transformers"
    assert enc.dim == 32
    batch = enc.tokenize(["the cat, the dog"], is_query=False)
    vectors = enc.encode_documents(["the cat, the dog"])[0]
    assert len(vectors) == int(batch.attention_mask.sum())  # nothing dropped, no marker
    ref = _reference(checkpoints["plain"], batch.input_ids, batch.attention_mask, torch.eye(32))[0]
    np.testing.assert_allclose(vectors, ref, atol=1e-5)
    query = enc.encode_queries(["cat"])[0]
    assert len(query) == 3  # [CLS] cat [SEP]: no expansion


def test_batching_and_order_do_not_change_vectors(checkpoints) -> None:
    one = Encoder.from_pretrained(checkpoints["stanford"], batch_size=1, precision="float32", show_progress=False)
    many = Encoder.from_pretrained(checkpoints["stanford"], batch_size=3, precision="float32", show_progress=False)
    for a, b in zip(one.encode_documents(DOCS), many.encode_documents(DOCS), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_bfloat16_precision_stays_close(checkpoints, encoder: Encoder) -> None:
    fast = Encoder.from_pretrained(checkpoints["stanford"], precision="bfloat16", show_progress=False)
    for a, b in zip(encoder.encode_documents(DOCS), fast.encode_documents(DOCS), strict=True):
        assert a.shape == b.shape
        assert float((a * b).sum(axis=1).min()) > 0.98


@pytest.mark.parametrize("bad", [[""], ["  \n"], [3], "a string", None])
def test_bad_texts_are_rejected(encoder: Encoder, bad) -> None:
    with pytest.raises(ConfigError):
        encoder.encode_documents(bad)


def test_unknown_setting_is_an_error(checkpoints) -> None:
    with pytest.raises(ConfigError, match="unknown encoder setting"):
        Encoder.from_pretrained(checkpoints["stanford"], doc_max_len=10)


def test_missing_marker_token_is_an_error(checkpoints) -> None:
    with pytest.raises(CheckpointError, match="marker"):
        Encoder.from_pretrained(checkpoints["stanford"], query_marker="[Q-not-in-vocab]")


def test_encoding_is_thread_safe(encoder: Encoder) -> None:
    expected = encoder.encode_documents(DOCS)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(5):
                encoder.encode_queries(QUERIES)
                for a, b in zip(encoder.encode_documents(DOCS), expected, strict=True):
                    np.testing.assert_allclose(a, b, atol=1e-5)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
