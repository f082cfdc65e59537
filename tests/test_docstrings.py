"""The examples in docstrings run and give what they say (hand-checkable numbers)."""

from __future__ import annotations

import doctest
from types import ModuleType

import pytest

from colbert_retriever import bm25, maxsim, metrics
from colbert_retriever.pipeline import fusion
from colbert_retriever.stores.folder import codec, lexical, merges, pooling, segment

MODULES = [bm25, maxsim, metrics, fusion, pooling, codec, lexical, merges, segment]


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_docstring_examples(module: ModuleType) -> None:
    failures, tried = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert tried > 0
    assert failures == 0
