"""The examples in docstrings run and give what they say (hand-checkable numbers)."""

from __future__ import annotations

import doctest
from types import ModuleType

import pytest

from colbert_retriever import maxsim, metrics, pooling
from colbert_retriever.search import codec
from colbert_retriever.storage import segment


@pytest.mark.parametrize("module", [maxsim, metrics, pooling, codec, segment], ids=lambda m: m.__name__)
def test_docstring_examples(module: ModuleType) -> None:
    failures, tried = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert tried > 0
    assert failures == 0
