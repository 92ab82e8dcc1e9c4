"""A small Transformer encoder for token sequences.

Layer names: ``embed`` (token embedding), ``pos_embed`` (learned positions only),
``block1.norm1``, ``block1.attn.q`` ... ``block1.add2``, ..., ``norm``, ``head``.
Per-token tasks (copy, reverse, next character) get logits (N, T, K); sequence
classification gets (N, K) from the mean over positions.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from .attention import EncoderBlock, check_encoder, init_encoder, sinusoidal_positions
from .init import MAX_CLASSES, check_bool, check_input_shape, check_int


def check_sequence_shape(arch: str, input_shape: object) -> int:
    """The sequence length of a (T,) input shape, or ValueError saying what the model takes."""
    shape = check_input_shape(input_shape)
    if len(shape) != 1:
        raise ValueError(f"{arch} takes token sequences of shape (T,), got input shape {shape}; "
                         "use a sequence dataset (copy, reverse, sort, brackets, parity, text)")
    return shape[0]


class Transformer(nn.Module):
    """Encoder-only Transformer over token ids (N, T)."""

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        vocab_size: int = 16,
        num_layers: int = 2,
        num_heads: int = 4,
        d_model: int = 64,
        ff_width: int = 128,
        positions: str = "learned",
        norm_first: bool = True,
        causal: bool = False,
        per_token: bool = True,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        length = check_sequence_shape("transformer", input_shape)
        num_classes = check_int("num_classes", num_classes, 2, MAX_CLASSES)
        vocab_size = check_int("vocab_size", vocab_size, 2, MAX_CLASSES)
        check_encoder(num_layers, num_heads, d_model, ff_width, dropout, positions)
        self.causal = check_bool("causal", causal)
        self.per_token = check_bool("per_token", per_token)
        norm_first = check_bool("norm_first", norm_first)
        self.vocab_size, self.max_len, self.num_layers = vocab_size, length, num_layers
        self.embed = nn.Embedding(vocab_size, d_model)
        if positions == "learned":
            self.pos_embed = nn.Embedding(length, d_model)
        else:
            self.pos_embed = None
            self.register_buffer("pos_table", sinusoidal_positions(length, d_model), persistent=False)
        for k in range(1, num_layers + 1):
            self.add_module(f"block{k}", EncoderBlock(d_model, num_heads, ff_width, dropout, norm_first, causal))
        self.norm = nn.LayerNorm(d_model) if norm_first else nn.Identity()
        self.head = nn.Linear(d_model, num_classes)
        self.init_scheme: str = init_encoder(self)
        nn.init.normal_(self.embed.weight, std=0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (N, T, K) per token, or (N, K) per sequence, for token ids ``x`` (N, T)."""
        tokens = x.long()  # float copies of the ids (display paths) are accepted too
        length = tokens.shape[1]
        if length > self.max_len:
            raise ValueError(f"the sequence has {length} tokens; this model takes at most {self.max_len}")
        h = self.embed(tokens)
        if self.pos_embed is not None:
            h = h + self.pos_embed(torch.arange(length, device=tokens.device))
        else:
            h = h + self.pos_table[:length]
        for k in range(1, self.num_layers + 1):
            h = getattr(self, f"block{k}")(h)
        h = self.norm(h)
        return self.head(h if self.per_token else h.mean(1))
