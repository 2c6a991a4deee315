"""K copies of one architecture with their parameters stacked along a leading model axis.

The training loop works on stacks, so one model and a hundred models trained at once
(torch.func.vmap over the stack) run the same code. BatchNorm buffers are stacked too,
so every model keeps its own running statistics.
"""

import copy
from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import nn
from torch.func import functional_call, stack_module_state

from lib import checks
from lib import models as _models


@dataclass
class Stack:
    """Stacked parameters and buffers of K models sharing one architecture."""

    template: nn.Module   # the architecture, on the meta device (holds no data)
    params: dict          # name -> (K, *shape) tensor
    buffers: dict         # name -> (K, *shape) tensor
    groups: dict          # group ("w", "g") -> list of parameter names

    def __post_init__(self):
        _models.module("template", self.template)
        for what in ("params", "buffers", "groups"):
            if not isinstance(getattr(self, what), dict):
                raise TypeError(f"{what} must be a dict, got {type(getattr(self, what)).__name__}")
        if not self.params:
            raise ValueError("params must hold at least one stacked parameter")
        k = _leading(next(iter(self.params.values())))
        for what, tensors in (("params", self.params), ("buffers", self.buffers)):
            for n, t in tensors.items():
                if k is None or _leading(t) != k:
                    raise ValueError(f"{what}[{n!r}] must be a (K, ...) tensor with the K models "
                                     f"of the first parameter")
        if any(n not in self.params for ns in self.groups.values() for n in ns):
            raise ValueError("groups must map each group to names in params")

    @property
    def size(self) -> int:
        return next(iter(self.params.values())).shape[0]

    def __call__(self, params, buffers, x):
        """Forward pass of one model (use under vmap): ``params``/``buffers`` unstacked."""
        return functional_call(self.template, (params, buffers), (x,))


def group_names(model: nn.Module) -> dict:
    """Parameter groups of ``model`` as lists of parameter names (empty groups dropped)."""
    _models.module("model", model)
    name_of = {id(p): n for n, p in model.named_parameters()}
    return {k: [name_of[id(p)] for p in ps] for k, ps in _models.groups(model).items() if ps}


def from_models(models, device=None) -> Stack:
    """Stack ``models`` (same architecture) onto ``device`` (default: the first model's).

    Accepts a non-empty list of ``nn.Module`` with parameters, equal in parameter and buffer
    names, shapes and dtypes; ``device`` None or an available device.
    """
    models = _module_list("models", models)
    if not any(True for _ in models[0].parameters()):
        raise ValueError("models[0] has no parameters to train")
    layouts = [_layout(m) for m in models]
    for i, layout in enumerate(layouts):
        if layout != layouts[0]:
            raise ValueError(f"models must share one architecture: models[{i}] differs from "
                             f"models[0] in its parameters or buffers (names, shapes, dtypes)")
    device = checks.device("device", device) if device is not None \
        else next(models[0].parameters()).device
    params, buffers = stack_module_state([m.to(device) for m in models])
    params = {n: p.detach().clone() for n, p in params.items()}
    template = copy.deepcopy(models[0]).to("meta").train()
    return Stack(template, params, {n: b.clone() for n, b in buffers.items()},
                 group_names(models[0]))


def write_back(stack: Stack, models) -> None:
    """Copy the stack's parameters and buffers into ``models`` (in place).

    ``models``: as many as the stack holds, of the stack's architecture.
    """
    if not isinstance(stack, Stack):
        raise TypeError(f"stack must be a lib.stack.Stack, got {type(stack).__name__}")
    models = _module_list("models", models)
    if len(models) != stack.size:
        raise ValueError(f"models must hold the stack's {stack.size} models, got {len(models)}")
    for i, m in enumerate(models):
        for name, t in list(m.named_parameters()) + list(m.named_buffers()):
            source = stack.params.get(name, stack.buffers.get(name))
            if source is None or source.shape[1:] != t.shape:
                raise ValueError(f"models[{i}] does not have the stack's architecture ({name!r})")
    with torch.no_grad():
        for k, model in enumerate(models):
            for name, tensor in list(model.named_parameters()) + list(model.named_buffers()):
                source = stack.params.get(name, stack.buffers.get(name))
                tensor.copy_(source[k])


def _module_list(name: str, models) -> list:
    if isinstance(models, nn.Module) or not isinstance(models, Iterable):
        raise TypeError(f"{name} must be a list of torch.nn.Module, got {type(models).__name__}")
    models = list(models)
    if not models:
        raise ValueError(f"{name} must hold at least one model")
    for i, m in enumerate(models):
        _models.module(f"{name}[{i}]", m)
    return models


def _layout(model: nn.Module) -> list:
    tensors = list(model.named_parameters()) + list(model.named_buffers())
    return [(n, t.shape, t.dtype) for n, t in tensors]


def _leading(t):
    """Size of the model axis of a stacked tensor (None for a non-tensor or a 0-d one)."""
    return t.shape[0] if isinstance(t, torch.Tensor) and t.ndim and t.shape[0] else None
