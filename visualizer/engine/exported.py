"""Exported programs (``torch.export``) as ordinary modules whose layers hooks can see.

An exported program runs ATen operations, not the original submodules, so forward hooks
on its modules never fire. :class:`ExportedModel` interprets the graph node by node
(``torch.fx.Interpreter``) and, at the last node of each run of nodes that came from one
module (``node.meta["nn_module_stack"]``), passes the value through a *tap*: a leaf module
named after that original module (``block1.conv``), holding the original module's
parameters. Hooks attached to the taps (activations, gradients, discovery of layers) then
see every intermediate value, and training updates the program's own weights.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.fx
from torch import nn
from torch.utils._pytree import tree_flatten, tree_map, tree_unflatten


class Tap(nn.Module):
    """Stands for one module of the exported model: called with that module's input and output,
    it returns the output unchanged, so hooks see (inputs, output) as on the original module."""

    source_type = ""

    def forward(self, x_in: Any, x_out: Any) -> Any:
        return x_out

    def extra_repr(self) -> str:
        return self.source_type


_TAP_CLASSES: dict[str, type[Tap]] = {}


def _tap_class(type_path: str) -> type[Tap]:
    """A Tap subclass named like the original class; for torch.nn classes also an instance of it,
    so code that asks ``isinstance(m, nn.Conv2d)`` (filter images) treats it as a convolution."""
    if type_path in _TAP_CLASSES:
        return _TAP_CLASSES[type_path]
    name = type_path.rsplit(".", 1)[-1] or "Module"
    bases: tuple[type, ...] = (Tap,)
    if type_path.startswith("torch.nn.modules."):
        original = getattr(nn, name, None)
        if isinstance(original, type) and issubclass(original, nn.Module):
            bases = (Tap, original)
    cls = type(name, bases, {"forward": Tap.forward, "extra_repr": Tap.extra_repr, "__module__": __name__})
    _TAP_CLASSES[type_path] = cls
    return cls


def _innermost(node: torch.fx.Node) -> tuple[str, str] | None:
    """(dotted module name, class path) of the innermost module a node came from, or None at the root."""
    stack = node.meta.get("nn_module_stack") or {}
    if not stack:
        return None
    path, type_path = list(stack.values())[-1]
    path = str(path)
    if path.startswith("L['self']"):
        path = path[len("L['self']"):].lstrip(".")
    if not path:
        return None
    if not isinstance(type_path, str):
        type_path = f"{type_path.__module__}.{type_path.__qualname__}"
    return path, type_path


def _input_node(node: torch.fx.Node) -> torch.fx.Node | None:
    """The node whose value is the module's input: the first tensor argument that is not a weight."""
    for arg in node.args:
        if isinstance(arg, torch.fx.Node) and arg.op != "get_attr" and isinstance(arg.meta.get("val"), torch.Tensor):
            return arg
    return None


def _arg(node: torch.fx.Node, index: int, default: Any) -> Any:
    value = node.args[index] if len(node.args) > index else default
    return default if value in (None, [], ()) else value


def _copy_geometry(tap: nn.Module, node: torch.fx.Node) -> None:
    """Give a tap the geometry of the convolution or pooling its node runs, as the original module had."""
    name = str(node.target)
    if "conv2d" in name and len(node.args) > 1 and isinstance(node.args[1], torch.fx.Node):
        weight = node.args[1].meta.get("val")
        if weight is None:
            return
        tap.kernel_size = tuple(int(k) for k in weight.shape[2:])
        tap.stride, tap.padding, tap.dilation = _arg(node, 3, 1), _arg(node, 4, 0), _arg(node, 5, 1)
    elif "max_pool2d" in name or "avg_pool2d" in name:
        tap.kernel_size = _arg(node, 1, 1)
        tap.stride = _arg(node, 2, tap.kernel_size)
        tap.padding = _arg(node, 3, 0)
        tap.dilation = _arg(node, 4, 1) if "max_pool2d" in name else 1


def _set_submodule(root: nn.Module, dotted: str, module: nn.Module) -> None:
    parent = root
    parts = dotted.split(".")
    for part in parts[:-1]:
        child = getattr(parent, part, None)
        if not isinstance(child, nn.Module):
            child = nn.Module()
            setattr(parent, part, child)
        parent = child
    setattr(parent, parts[-1], module)


class ExportedModel(nn.Module):
    """An exported program run node by node, with a hookable tap per original module.

    The taps form this module's tree under the original names (``block1.conv``) and own
    the original parameters, so ``named_parameters()`` matches the source model's state dict.
    """

    def __init__(self, program: Any) -> None:
        super().__init__()
        graph_module = program.module()
        object.__setattr__(self, "graph_module", graph_module)  # kept out of the module tree
        nodes = [n for n in graph_module.graph.nodes if n.op in ("call_function", "call_method", "call_module")
                 and not str(n.target).startswith("_guards")]
        runs: list[tuple[str, str, torch.fx.Node, torch.fx.Node | None]] = []  # layer, type, last node, input
        for node in nodes:
            where = _innermost(node)
            if where is None:
                continue
            if runs and runs[-1][0] == where[0]:
                runs[-1] = (where[0], where[1], node, runs[-1][3])
            else:
                runs.append((where[0], where[1], node, _input_node(node)))
        types = {layer: type_path for layer, type_path, _, _ in runs}
        parents = {layer.rsplit(".", i)[0] for layer in types for i in range(1, layer.count(".") + 1)}
        # a module with operations of its own and submodules too gets its tap as ".output"
        names = {layer: f"{layer}.output" if layer in parents else layer for layer in types}
        self.layer_names: list[str] = []
        # graph node name -> (tap, name of the node holding the module's input); names, not nodes, so a deep
        # copy (an analysis snapshot) does not copy the graph's symbolic metadata
        self._tap_after: dict[str, tuple[nn.Module, str | None]] = {}
        taps: dict[str, nn.Module] = {}
        for layer, type_path in types.items():
            cls = _tap_class(type_path)
            tap = cls.__new__(cls)
            nn.Module.__init__(tap)
            tap.source_type = type_path
            try:
                holder = graph_module.get_submodule(layer)
            except AttributeError:
                holder = None
            if holder is not None:  # the same Parameter objects the graph reads
                tap._parameters.update(holder._parameters)
                tap._buffers.update(holder._buffers)
            _set_submodule(self, names[layer], tap)
            taps[layer] = tap
            self.layer_names.append(names[layer])
        for layer, _, last, source in runs:
            self._tap_after.setdefault(last.name, (taps[layer], source.name if source is not None else None))
        for node in nodes:  # kernel, stride, padding, dilation of convolutions and pools (receptive fields)
            where = _innermost(node)
            if where is not None and not hasattr(taps[where[0]], "kernel_size"):
                _copy_geometry(taps[where[0]], node)

        self.input_shapes = _input_shapes(graph_module)
        # operations that behave differently in training (batch norm, dropout): node name -> (the index of their
        # training flag, its exported value). A program exported in train mode still runs them in eval mode when
        # this module is in eval mode, so inspecting it neither updates running statistics nor drops units.
        # The batch counter's increment (num_batches_tracked += 1) adds 0 in eval mode.
        self._mode_flags: dict[str, tuple[int, Any, Any]] = {}  # node -> (argument, exported value, eval value)
        for n in graph_module.graph.nodes:
            op = str(n.target).split(".")[1] if n.op == "call_function" and "." in str(n.target) else ""
            i = _MODE_FLAG.get(op, -1)
            if 0 <= i < len(n.args) and isinstance(n.args[i], bool):
                self._mode_flags[n.name] = (i, n.args[i], False)
            elif op == "add_" and len(n.args) == 2 and str(getattr(n.args[0], "target", "")).endswith("num_batches_tracked"):
                self._mode_flags[n.name] = (1, n.args[1], 0)
        self.exported_in_training = any(v is True for _, v, _ in self._mode_flags.values())

    def train(self, mode: bool = True) -> ExportedModel:
        super().train(mode)
        nodes = {n.name: n for n in self.graph_module.graph.nodes} if self._mode_flags else {}
        for name, (i, exported, in_eval) in self._mode_flags.items():
            args = list(nodes[name].args)
            args[i] = exported if mode else in_eval
            nodes[name].args = tuple(args)
        return self

    def forward(self, *args: Any) -> Any:
        """Run the graph; a program exported for a fixed batch size runs in chunks of that size."""
        expected = self.input_shapes[0] if self.input_shapes else None
        x = args[0] if args else None
        if expected is None or not isinstance(x, torch.Tensor) or len(args) != 1:
            return _TappingInterpreter(self).run(*args)
        if x.dim() != len(expected) or any(isinstance(e, int) and e != s for e, s in zip(expected[1:], x.shape[1:])):
            want = ", ".join(str(e) if isinstance(e, int) else "any" for e in expected)
            raise ValueError(f"the exported program takes inputs of shape ({want}), got {tuple(x.shape)}")
        batch = expected[0]
        if not isinstance(batch, int) or batch == x.shape[0]:
            return _TappingInterpreter(self).run(x)
        outs, seen = [], {}
        for start in range(0, x.shape[0], batch):
            chunk = x[start:start + batch]
            n = chunk.shape[0]
            if n < batch:  # pad with copies of the last sample; eval-mode outputs are per sample
                chunk = torch.cat([chunk, chunk[-1:].expand(batch - n, *chunk.shape[1:])])
            run = _TappingInterpreter(self, tap=False)
            outs.append(tree_map(lambda v: v[:n] if isinstance(v, torch.Tensor) else v, run.run(chunk)))
            for tap, pair in run.tapped.items():
                seen.setdefault(tap, []).append(tuple(v[:n] for v in pair))
        for tap, pairs in seen.items():  # each tap sees the whole batch once, in forward order
            tap(torch.cat([p[0] for p in pairs]), torch.cat([p[1] for p in pairs]))
        return _cat_outputs(outs)

    def _apply(self, fn: Any, recurse: bool = True) -> ExportedModel:  # .to(device) reaches the graph's constants
        self.graph_module._apply(fn)
        return super()._apply(fn)


# aten operations with a training flag, and its position among their arguments
_MODE_FLAG = {"batch_norm": 5, "_native_batch_norm_legit_functional": 5, "native_batch_norm": 5,
              "dropout": 2, "feature_dropout": 2, "alpha_dropout": 2, "feature_alpha_dropout": 2}


def _cat_outputs(outs: list[Any]) -> Any:
    """The chunks' outputs (tensors, or tuples and dicts of them) joined along the batch."""
    leaves, spec = tree_flatten(outs[0])
    parts = [tree_flatten(o)[0] for o in outs]
    joined = [torch.cat([p[i] for p in parts]) if isinstance(leaf, torch.Tensor) else leaf
              for i, leaf in enumerate(leaves)]
    return tree_unflatten(joined, spec)


def _input_shapes(graph_module: Any) -> list[tuple[Any, ...]]:
    """Shapes of the user inputs the program was exported for (an int per fixed dimension)."""
    shapes = []
    for node in graph_module.graph.nodes:
        if node.op == "placeholder":
            val = node.meta.get("val")
            if isinstance(val, torch.Tensor):
                shapes.append(tuple(int(d) if isinstance(d, int) else d for d in val.shape))
    return shapes


class _TappingInterpreter(torch.fx.Interpreter):
    """Runs the graph and passes each module's input and last value through its tap (or, with
    ``tap=False``, only records them in ``tapped``, the first pair per tap)."""

    def __init__(self, model: ExportedModel, tap: bool = True) -> None:
        super().__init__(model.graph_module)
        self.model = model
        self.tap = tap
        self.tapped: dict[nn.Module, Any] = {}
        self.nodes = {n.name: n for n in model.graph_module.graph.nodes}

    def run_node(self, n: torch.fx.Node) -> Any:
        value = super().run_node(n)
        found = self.model._tap_after.get(n.name)
        if found is None:
            return value
        tap, source = found
        given = self.env.get(self.nodes[source]) if source is not None else None
        given = given if isinstance(given, torch.Tensor) else value
        if not self.tap:
            if isinstance(value, torch.Tensor):
                self.tapped.setdefault(tap, (given, value))
            return value
        return tap(given, value)
