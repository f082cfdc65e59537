"""The torch modules after the transformer: PyLate's Dense layer, and the transformer with
its projection as one module (what the encoder runs, quantises and exports to ONNX)."""

from __future__ import annotations

from typing import Any

import torch

from colbert_retriever.model.checkpoint import ProjectionLayer, activation_module


class Dense(torch.nn.Module):
    """PyLate's Dense layer: act(linear(x)), plus x (through `residual` where the widths
    differ) when the layer uses a residual. Parameter names are PyLate's."""

    def __init__(self, layer: ProjectionLayer) -> None:
        super().__init__()
        out_features, in_features = layer.weight.shape
        self.linear = torch.nn.Linear(in_features, out_features, bias=layer.bias is not None)
        self.activation = activation_module(layer.activation)
        self.use_residual = layer.use_residual
        self.residual = None
        if layer.use_residual and out_features != in_features:
            assert layer.residual is not None, "checked when the checkpoint was read"
            self.residual = torch.nn.Linear(in_features, out_features, bias=False)
        with torch.no_grad():
            self.linear.weight.copy_(layer.weight)
            if layer.bias is not None:
                self.linear.bias.copy_(layer.bias)
            if self.residual is not None and layer.residual is not None:
                self.residual.weight.copy_(layer.residual)

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        projected = self.activation(self.linear(states))
        if not self.use_residual:
            return projected
        return projected + (states if self.residual is None else self.residual(states))


class TokenVectors(torch.nn.Module):
    """(input_ids, attention_mask) -> projected token states, not yet normalised."""

    def __init__(self, transformer: Any, projection: torch.nn.Module) -> None:
        super().__init__()
        self.transformer = transformer
        self.projection = projection

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.projection(self.transformer(input_ids=input_ids, attention_mask=attention_mask)[0])
