"""What an index records about the encoder that filled it, and the check that a query
encoder writes into the same vector space."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from colbert_retriever.errors import DimensionMismatchError, ModelMismatchError


@dataclass(frozen=True)
class ModelFingerprint:
    """What an index records about the encoder that filled it.

    Two encoders with equal `digest` produce the same vectors for the same text (up to
    `precision`): it covers the token layout and a sample of every float weight tensor.
    `precision` is what the encoder computed in ("int8": the quantised model of these
    weights); queries in another precision still search the same vector space.
    """

    name: str
    format: str
    dim: int
    digest: str
    layout: dict[str, object]
    precision: str = "float32"

    def to_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)

    def check_index(self, recorded: dict[str, Any], where: str) -> None:
        """Refuse to encode queries for the index `where` (built by the model `recorded`)
        into another vector space than its documents'."""
        if self.dim != recorded["dim"]:
            msg = (
                f"{where} stores dim={recorded['dim']} but the encoder {self.name!r} emits dim={self.dim}; "
                f"open it with the model it was built with ({recorded['name']!r}) or build a new index"
            )
            raise DimensionMismatchError(msg)
        if self.digest != recorded["digest"]:
            msg = (
                f"{where} was built with model {recorded['name']!r} (fingerprint {recorded['digest']}), "
                f"not {self.name!r} (fingerprint {self.digest}); its weights or token settings differ"
            )
            raise ModelMismatchError(msg)
