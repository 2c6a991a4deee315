"""K copies of one architecture with their parameters stacked along a leading model axis.

The training loop works on stacks, so one model and a hundred models trained at once
(torch.func.vmap over the stack) run the same code. BatchNorm buffers are stacked too,
so every model keeps its own running statistics.
"""

import copy
from dataclasses import dataclass

import torch
from torch import nn
from torch.func import functional_call, stack_module_state

from lib import models as _models


@dataclass
class Stack:
    """Stacked parameters and buffers of K models sharing one architecture."""

    template: nn.Module   # the architecture, on the meta device (holds no data)
    params: dict          # name -> (K, *shape) tensor
    buffers: dict         # name -> (K, *shape) tensor
    groups: dict          # group ("w", "g") -> list of parameter names

    @property
    def size(self) -> int:
        return next(iter(self.params.values())).shape[0]

    def __call__(self, params, buffers, x):
        """Forward pass of one model (use under vmap): ``params``/``buffers`` unstacked."""
        return functional_call(self.template, (params, buffers), (x,))


def group_names(model: nn.Module) -> dict:
    """Parameter groups of ``model`` as lists of parameter names (empty groups dropped)."""
    name_of = {id(p): n for n, p in model.named_parameters()}
    return {k: [name_of[id(p)] for p in ps] for k, ps in _models.groups(model).items() if ps}


def from_models(models, device=None) -> Stack:
    """Stack ``models`` (same architecture) onto ``device`` (default: the first model's)."""
    models = list(models)
    if not models:
        raise ValueError("need at least one model to stack")
    shapes = [[(n, p.shape) for n, p in m.named_parameters()] for m in models]
    if any(s != shapes[0] for s in shapes):
        raise ValueError("all models in a stack must have the same architecture")
    device = device or next(models[0].parameters()).device
    params, buffers = stack_module_state([m.to(device) for m in models])
    params = {n: p.detach().clone() for n, p in params.items()}
    template = copy.deepcopy(models[0]).to("meta").train()
    return Stack(template, params, {n: b.clone() for n, b in buffers.items()},
                 group_names(models[0]))


def write_back(stack: Stack, models) -> None:
    """Copy the stack's parameters and buffers into ``models`` (in place)."""
    with torch.no_grad():
        for k, model in enumerate(models):
            for name, tensor in list(model.named_parameters()) + list(model.named_buffers()):
                source = stack.params.get(name, stack.buffers.get(name))
                tensor.copy_(source[k])
