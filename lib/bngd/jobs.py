"""The chapter's network sweeps at a scale, for ``python -m lib.reproduce bngd``.

The same calls as the chapter's section on networks (its sizes, the one-layer and CNN
learning-rate sweeps for every scheme, the scaled one-layer sweep, and above CPU scale
the CIFAR-10 CNN where the data are on disk), so that their cache entries are the ones
the chapter asks for; ``tests/test_reproduce.py`` executes the chapter's own cells
against the entries these jobs leave. (Its least-squares dynamics are not grid sweeps.)
"""

import functools

import numpy as np

from lib import data, device, scale
from lib.bngd import networks
from lib.reproduce import Job

RS = [10**-1.5, 1.0, 10**1.5]   # r² = 1e-3, 1, 1e3: the scaled one-layer sweep


def jobs(s: scale.Scale) -> list:
    """The chapter's grid jobs at scale ``s`` (a :class:`lib.scale.Scale`)."""
    if not isinstance(s, scale.Scale):
        raise TypeError(f"s must be a lib.scale.Scale, got {type(s).__name__}")
    n_train = min(60_000, int(2.5 * s.n_train))
    etas = tuple(np.logspace(-2, 3, 1 + 5 * (s.grid // 9)))
    one = networks.SweepConfig(etas=etas, seeds=s.seeds, loss="mse")
    cnn = networks.SweepConfig(etas=etas, seeds=max(2, s.seeds - 1), loss="cross_entropy")
    cnn_size = dict(width=max(4, s.width // 25), hidden=max(32, s.width // 4))
    wide = networks.SweepConfig(etas=tuple(np.logspace(-3, 5, 9)), seeds=max(2, s.seeds - 1),
                                loss="mse")
    train_set = functools.lru_cache(maxsize=1)(
        lambda: data.fashion_mnist("train", n=n_train, device=device.pick_device()))
    found = []
    for scheme in networks.SCHEMES:
        found += [
            Job(f"bngd-one-{scheme}", functools.partial(
                _sweep, networks.make_one_layer, train_set, scheme, one, f"bngd-one-{scheme}")),
            Job(f"bngd-cnn-{scheme}", functools.partial(
                _sweep, networks.make_conv_net, train_set, scheme, cnn, f"bngd-cnn-{scheme}",
                **cnn_size))]
    found.append(Job("bngd-one-scaled", functools.partial(
        _sweep, networks.make_one_layer, train_set, "bn_separate", wide, "bngd-one-scaled",
        axes={"scale": RS})))
    if s.name != "cpu":
        cifar = functools.lru_cache(maxsize=1)(lambda: data.cifar10(
            "train", n=min(50_000, n_train), device=device.pick_device(), download=False))
        found += [Job(f"bngd-cifar-{scheme}", functools.partial(
            _cifar_sweep, networks.make_conv_net, cifar, scheme, cnn, f"bngd-cifar-{scheme}",
            in_channels=3, image_size=32, **cnn_size)) for scheme in networks.SCHEMES]
    return found


def _sweep(make_model, load, scheme, config, cache, **kw):
    return networks.eta_sweep(make_model, load(), scheme, config, cache=cache, **kw)


def _cifar_sweep(make_model, load, *args, **kw):
    """As the chapter does: without CIFAR-10 on disk the sweep is skipped, with a note."""
    try:
        load()
    except data.DatasetNotFoundError as err:
        print(f"CIFAR-10 not available, skipped: {err}")
        return None
    return _sweep(make_model, load, *args, **kw)
