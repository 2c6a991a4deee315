"""Helpers several test files share: tiny classification data and networks, a direct
(autograd, nn.Module) loss and gradient, and checks that a figure drew given arrays."""

import copy

import numpy as np
import torch

from lib.autorate import theory
from lib.synthetic import gaussian_classification


def tiny(n=64, d=8, classes=3, seed=0):
    data = gaussian_classification(n, d, n_classes=classes, seed=seed, device="cpu",
                                   dtype=torch.get_default_dtype())
    return data.X, data.y


def net(norm="bn_smooth", width=12, seed=0, **kw):
    return theory.make_mlp(seed=seed, width=width, norm=norm, n_in=8, n_out=3, **kw)


def direct_loss_and_grads(model, X, y):
    model = copy.deepcopy(model)
    model.zero_grad()
    loss = torch.nn.functional.cross_entropy(model(X), y)
    loss.backward()
    return loss.item(), {n: p.grad.clone() for n, p in model.named_parameters()}


def data_of(line):
    return np.asarray(line.get_xdata(), float), np.asarray(line.get_ydata(), float)


def assert_line(line, x, y):
    lx, ly = data_of(line)
    np.testing.assert_array_equal(lx, np.asarray(x, float))
    np.testing.assert_array_equal(ly, np.asarray(y, float))
