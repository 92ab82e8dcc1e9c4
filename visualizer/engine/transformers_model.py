"""A Hugging Face Transformers model seen as the app's other sequence models: token ids in, logits out.

:class:`TransformersModel` takes token ids (N, T), builds the attention mask from the
padding id, and returns the model's logits (N, K) or (N, T, K), or its last hidden state
when it has no head. It keeps the wrapped model's own module names (``bert.encoder...``)
so hooks, layer lists and saved answers use the names a person knows, and it reports its
attention: with ``keep_weights`` on, one forward pass asks for ``output_attentions`` and
keeps ``last_weights`` ({attention module name: (N, heads, T, T)}). It never imports
``transformers`` itself; the tokenizer is carried along for typed text.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

SAMPLE_TEXTS = (
    "the quick brown fox jumps over the lazy dog",
    "a small network can learn a lot from a few examples",
    "attention shows which words each word looks at",
    "the cat sat on the mat",
    "models trained elsewhere can be opened and inspected",
    "every layer and head has its own pattern",
    "tokens on both axes make the maps readable",
    "the weather today is sunny with a light breeze",
)


def attention_names(model: nn.Module, count: int) -> list[str]:
    """Names of the ``count`` outermost modules whose class name ends in "Attention" (one per
    layer, in order), or ``layer0``... when the model's modules do not say so."""
    names: list[str] = []
    for name, m in model.named_modules():
        if name and type(m).__name__.endswith("Attention") and not any(name.startswith(n + ".") for n in names):
            names.append(name)
    return names if len(names) == count else [f"layer{i}" for i in range(count)]


class TransformersModel(nn.Module):
    """Token ids (N, T) -> logits of a Transformers model; reports its attention (see module doc)."""

    def __init__(self, hf_model: nn.Module, tokenizer: Any = None) -> None:
        super().__init__()
        object.__setattr__(self, "hf", hf_model)  # called, but not a child: names stay the model's own
        for name, child in hf_model.named_children():
            self.add_module(name, child)
        object.__setattr__(self, "tokenizer", tokenizer)
        config = getattr(hf_model, "config", None)
        self.pad_id = getattr(tokenizer, "pad_token_id", None) if tokenizer is not None else getattr(config, "pad_token_id", None)
        self.max_len = getattr(config, "max_position_embeddings", None)
        self.num_layers = int(getattr(config, "num_hidden_layers", 0) or 0)
        self.vocab_size = getattr(config, "vocab_size", None)
        self.init_scheme = "pretrained"
        self.display_name = type(hf_model).__name__  # what the app calls the model
        self.keep_weights = False
        self.last_weights: dict[str, torch.Tensor] | None = None
        self._names = attention_names(self, self.num_layers) if self.num_layers else []
        self.spec = {"arch": self.display_name, "head": self._has_head()}  # "head": whether it predicts anything

    def _has_head(self) -> bool:
        """Whether the model returns logits (a classification or language-model head), from one token."""
        p = next(self.hf.parameters(), None)
        one = torch.full((1, 1), self.pad_id if self.pad_id is not None else 0, dtype=torch.long,
                         device=p.device if p is not None else "cpu")
        with torch.no_grad():
            try:
                return getattr(self.hf(input_ids=one, return_dict=True), "logits", None) is not None
            except Exception:  # noqa: BLE001 - a model that cannot run on one token: assume a head
                return True

    def attention_layer_names(self) -> list[str]:
        """One name per attention layer (what ``last_weights`` is keyed by)."""
        return list(self._names)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """Logits (N, K) or (N, T, K), or the last hidden state, for token ids ``ids`` (N, T)."""
        ids = ids.long()
        mask = (ids != self.pad_id).long() if self.pad_id is not None else None
        out = self.hf(input_ids=ids, attention_mask=mask, output_attentions=self.keep_weights, return_dict=True)
        if self.keep_weights:
            maps = getattr(out, "attentions", None) or ()
            if not maps and self._forget_capture_hooks():  # a copy whose recording hooks were removed
                out = self.hf(input_ids=ids, attention_mask=mask, output_attentions=True, return_dict=True)
                maps = getattr(out, "attentions", None) or ()
            names = self._names if len(self._names) == len(maps) else [f"layer{i}" for i in range(len(maps))]
            self.last_weights = {n: a.detach() for n, a in zip(names, maps) if a is not None}
        logits = getattr(out, "logits", None)
        return logits if logits is not None else out.last_hidden_state

    def _forget_capture_hooks(self) -> bool:
        """Transformers records attentions with forward hooks it installs once and marks as installed;
        an analysis copy (``capture.jobs.snapshot``) has its hooks removed, so clear the mark to have
        them installed again. True if there was a mark to clear."""
        marked = [m for m in self.hf.modules() if getattr(m, "_output_capturing_hooks_installed", False)]
        for m in marked:
            m._output_capturing_hooks_installed = False
        return bool(marked)

    def symbols(self, ids: Any) -> list[str]:
        """The tokenizer's token for each id (or the ids as text without a tokenizer)."""
        ids = [int(i) for i in ids]
        if self.tokenizer is None:
            return [str(i) for i in ids]
        return [str(t) for t in self.tokenizer.convert_ids_to_tokens(ids)]

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` as the model's tokenizer makes them (special tokens included).
        ValueError with one line if there is no tokenizer or nothing to run."""
        if self.tokenizer is None:
            raise ValueError("this Transformers folder has no usable tokenizer, so typed text cannot be tokenised")
        ids = list(self.tokenizer(text)["input_ids"])
        if not text.strip() or not ids:
            raise ValueError("type some text first")
        if self.max_len is not None and len(ids) > self.max_len:
            raise ValueError(f"the text makes {len(ids)} tokens; this model takes at most {self.max_len}")
        return ids

    def sample_ids(self) -> torch.Tensor:
        """The sample sentences, tokenised and padded to one length: (N, T) ids to inspect the model with."""
        rows = [self.encode(t) for t in SAMPLE_TEXTS]
        length = max(len(r) for r in rows)
        pad = self.pad_id if self.pad_id is not None else 0
        return torch.tensor([r + [pad] * (length - len(r)) for r in rows], dtype=torch.long)

    def train(self, mode: bool = True) -> TransformersModel:
        super().train(mode)
        self.hf.train(mode)
        return self
