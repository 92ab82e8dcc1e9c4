"""RNN, LSTM and GRU models over token sequences.

Each recurrent layer is its own single-layer ``nn.RNN``/``nn.LSTM``/``nn.GRU`` leaf
(``rnn1``, ``rnn2``, ...), so every layer's hidden-state sequence is visible to hooks
and its gates can be recomputed from its weights (see ``capture.attention``).
Layer names: ``embed``, ``rnn1``, ..., ``head``. Per-token tasks get logits (N, T, K);
sequence classification reads the last hidden state, (N, K).
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from .init import MAX_CLASSES, check_bool, check_int
from .transformer import check_sequence_shape

CELLS: dict[str, type[nn.RNNBase]] = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


class RecurrentModel(nn.Module):
    """Embedding, ``num_layers`` recurrent layers of ``hidden_size`` units, and a linear head."""

    cell = "rnn"

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        vocab_size: int = 16,
        embed_dim: int = 32,
        hidden_size: int = 64,
        num_layers: int = 1,
        per_token: bool = True,
        causal: bool = True,
    ) -> None:
        super().__init__()
        check_sequence_shape(self.cell, input_shape)
        num_classes = check_int("num_classes", num_classes, 2, MAX_CLASSES)
        vocab_size = check_int("vocab_size", vocab_size, 2, MAX_CLASSES)
        embed_dim = check_int("embed_dim", embed_dim, 1, 4096)
        hidden_size = check_int("hidden_size", hidden_size, 1, 4096)
        self.num_layers = check_int("num_layers", num_layers, 1, 8)
        self.per_token = check_bool("per_token", per_token)
        check_bool("causal", causal)  # reading left to right is always causal; kept so specs agree
        self.embed = nn.Embedding(vocab_size, embed_dim)
        for k in range(1, self.num_layers + 1):
            self.add_module(f"rnn{k}", CELLS[self.cell](embed_dim if k == 1 else hidden_size, hidden_size, batch_first=True))
        self.head = nn.Linear(hidden_size, num_classes)
        self.init_scheme = "default"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (N, T, K) per token, or (N, K) from the last step, for token ids ``x`` (N, T)."""
        h = self.embed(x.long())
        for k in range(1, self.num_layers + 1):
            h, _ = getattr(self, f"rnn{k}")(h)
        return self.head(h if self.per_token else h[:, -1])


class RNN(RecurrentModel):
    """Elman RNN (tanh) over token sequences."""

    cell = "rnn"


class LSTM(RecurrentModel):
    """LSTM over token sequences."""

    cell = "lstm"


class GRU(RecurrentModel):
    """GRU over token sequences."""

    cell = "gru"
