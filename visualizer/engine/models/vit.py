"""A tiny Vision Transformer: patch embedding, a class token, and the same encoder blocks.

Layer names: ``patch_embed`` (a strided Conv2d), ``block1.attn.q`` ... (as in
:mod:`.transformer`), ``norm``, ``head``. Token 0 is the class token; tokens 1.. are the
patches in row-major order, so attention from token 0 reshaped to the patch grid is a
map over the image.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from .attention import EncoderBlock, check_encoder, init_encoder, sinusoidal_positions
from .init import MAX_CLASSES, check_bool, check_image_shape, check_int


class ViT(nn.Module):
    """Vision Transformer for (C, H, W) images split into ``patch_size`` squares."""

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        patch_size: int = 4,
        num_layers: int = 3,
        num_heads: int = 4,
        d_model: int = 64,
        ff_width: int = 128,
        positions: str = "learned",
        norm_first: bool = True,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        c, h, w = check_image_shape("vit", input_shape)
        num_classes = check_int("num_classes", num_classes, 2, MAX_CLASSES)
        patch_size = check_int("patch_size", patch_size, 1, max(h, w))
        if h % patch_size or w % patch_size:
            raise ValueError(f"patch_size ({patch_size}) must divide the image size {h}x{w}")
        check_encoder(num_layers, num_heads, d_model, ff_width, dropout, positions)
        norm_first = check_bool("norm_first", norm_first)
        self.grid = (h // patch_size, w // patch_size)
        self.num_layers = num_layers
        length = 1 + self.grid[0] * self.grid[1]
        self.patch_embed = nn.Conv2d(c, d_model, patch_size, stride=patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d_model))
        if positions == "learned":
            self.pos = nn.Parameter(torch.randn(1, length, d_model) * 0.02)
        else:
            self.register_buffer("pos", sinusoidal_positions(length, d_model)[None], persistent=False)
        for k in range(1, num_layers + 1):
            self.add_module(f"block{k}", EncoderBlock(d_model, num_heads, ff_width, dropout, norm_first))
        self.norm = nn.LayerNorm(d_model) if norm_first else nn.Identity()
        self.head = nn.Linear(d_model, num_classes)
        self.init_scheme: str = init_encoder(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits (N, K) for images (N, C, H, W)."""
        patches = self.patch_embed(x).flatten(2).transpose(1, 2)  # (N, P, d)
        h = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), patches], 1) + self.pos
        for k in range(1, self.num_layers + 1):
            h = getattr(self, f"block{k}")(h)
        return self.head(self.norm(h)[:, 0])
