"""Multi-head self-attention whose weights can be read, and the encoder block built on it.

PyTorch's stock encoder layer never returns its attention weights on the fast path, so
this module computes them itself, but only when asked: with ``keep_weights`` off (every
training step) it calls ``F.scaled_dot_product_attention``; with it on (an armed capture)
it computes ``softmax(Q K^T / sqrt(d))`` explicitly and keeps it in ``last_weights``.
The projections are named leaves (``q``, ``k``, ``v``, ``out``) so hooks see them.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .init import Add, check_int, check_probability


class SelfAttention(nn.Module):
    """Multi-head self-attention over (N, T, d_model); ``causal`` hides later positions."""

    def __init__(self, d_model: int, num_heads: int, causal: bool = False, dropout: float = 0.0) -> None:
        super().__init__()
        if d_model % num_heads:
            raise ValueError(f"d_model ({d_model}) must be a multiple of num_heads ({num_heads})")
        self.num_heads, self.head_dim, self.causal, self.dropout = num_heads, d_model // num_heads, causal, dropout
        self.q = nn.Linear(d_model, d_model)
        self.k = nn.Linear(d_model, d_model)
        self.v = nn.Linear(d_model, d_model)
        self.out = nn.Linear(d_model, d_model)
        self.keep_weights = False  # set by a probe for one forward pass
        self.last_weights: torch.Tensor | None = None  # (N, heads, queries, keys) when kept

    def _heads(self, t: torch.Tensor) -> torch.Tensor:
        n, length, _ = t.shape
        return t.view(n, length, self.num_heads, self.head_dim).transpose(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Attend over the tokens of ``x`` (N, T, d_model); returns (N, T, d_model)."""
        n, length, d = x.shape
        q, k, v = self._heads(self.q(x)), self._heads(self.k(x)), self._heads(self.v(x))
        p = self.dropout if self.training else 0.0
        if self.keep_weights:
            scores = q @ k.transpose(-2, -1) / math.sqrt(self.head_dim)
            if self.causal:
                future = torch.ones(length, length, dtype=torch.bool, device=x.device).triu(1)
                scores = scores.masked_fill(future, float("-inf"))
            weights = scores.softmax(-1)
            self.last_weights = weights.detach()
            mixed = F.dropout(weights, p, self.training) @ v
        else:
            mixed = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=self.causal)
        return self.out(mixed.transpose(1, 2).reshape(n, length, d))


class EncoderBlock(nn.Module):
    """Transformer encoder block: attention and a feed-forward net, each with a residual sum.

    ``norm_first`` (pre-norm) normalises the input of each branch; otherwise (post-norm, the
    original Transformer) the sum is normalised. Leaves: ``norm1``, ``attn.{q,k,v,out}``,
    ``add1``, ``norm2``, ``ff1``, ``gelu``, ``ff2``, ``add2``.
    """

    def __init__(self, d_model: int, num_heads: int, ff_width: int, dropout: float = 0.0,
                 norm_first: bool = True, causal: bool = False) -> None:
        super().__init__()
        self.norm_first = norm_first
        self.norm1 = nn.LayerNorm(d_model)
        self.attn = SelfAttention(d_model, num_heads, causal, dropout)
        self.drop1 = nn.Dropout(dropout)
        self.add1 = Add()
        self.norm2 = nn.LayerNorm(d_model)
        self.ff1 = nn.Linear(d_model, ff_width)
        self.gelu = nn.GELU()
        self.ff2 = nn.Linear(ff_width, d_model)
        self.drop2 = nn.Dropout(dropout)
        self.add2 = Add()

    def _ff(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop2(self.ff2(self.gelu(self.ff1(x))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block to (N, T, d_model)."""
        if self.norm_first:
            x = self.add1(x, self.drop1(self.attn(self.norm1(x))))
            return self.add2(x, self._ff(self.norm2(x)))
        x = self.norm1(self.add1(x, self.drop1(self.attn(x))))
        return self.norm2(self.add2(x, self._ff(x)))


def sinusoidal_positions(length: int, d_model: int) -> torch.Tensor:
    """The fixed sine/cosine position codes of "Attention is all you need", (length, d_model)."""
    pos = torch.arange(length, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model))
    table = torch.zeros(length, d_model)
    table[:, 0::2] = torch.sin(pos * freq)
    table[:, 1::2] = torch.cos(pos * freq)[:, : d_model // 2]
    return table


POSITIONS = ("learned", "sinusoidal")


def check_encoder(num_layers: int, num_heads: int, d_model: int, ff_width: int, dropout: float,
                  positions: str) -> None:
    """Raise ValueError naming the first encoder setting out of range."""
    check_int("num_layers", num_layers, 1, 24)
    check_int("num_heads", num_heads, 1, 64)
    check_int("d_model", d_model, 2, 4096)
    check_int("ff_width", ff_width, 1, 16384)
    check_probability("dropout", dropout)
    if d_model % num_heads:
        raise ValueError(f"d_model ({d_model}) must be a multiple of num_heads ({num_heads})")
    if positions not in POSITIONS:
        raise ValueError(f"positions must be one of {', '.join(POSITIONS)}, got {positions!r}")


def init_encoder(model: nn.Module) -> str:
    """Xavier-uniform linear weights and zero biases, the usual Transformer initialisation."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
    return "xavier"
