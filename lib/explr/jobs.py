"""The chapter's sweeps at a scale, for ``python -m lib.reproduce explr``.

The same calls as the chapter's section on schedules (its setup at the scale, the data
with its fallback, the schedules of figures 2 to 6, the PreResNet factory and the
training configuration), so that the cache entries of :func:`lib.explr.comparisons.
schedule_runs` (one sweep over the seeds per schedule) are the ones the chapter asks for;
``tests/test_reproduce.py`` executes the chapter's own cells against the entries these
jobs leave. (Its equivalence runs, equilibria and toys are quick and not cached.)
"""

import functools

from lib import device, scale, train
from lib.explr import comparisons, networks
from lib.reproduce import Job


def jobs(s: scale.Scale) -> list:
    """The chapter's grid jobs at scale ``s`` (a :class:`lib.scale.Scale`)."""
    if not isinstance(s, scale.Scale):
        raise TypeError(f"s must be a lib.scale.Scale, got {type(s).__name__}")
    return [Job("explr-schedules", functools.partial(_schedules, s))]


def _schedules(s: scale.Scale) -> dict:
    """The chapter's cells "ex = ...", "runs = ..." and "make_model = ...; results = ..."."""
    ex = comparisons.schedule_setup(s)
    train_set, test_set, _ = comparisons.schedule_data(ex, device=device.pick_device())
    spe = len(train_set) // ex.batch_size                     # steps per epoch
    runs = comparisons.paper_schedules(ex, spe)
    make_model = functools.partial(
        networks.make_preresnet, in_channels=train_set.X.shape[1], widths=ex.widths,
        blocks=ex.blocks, stem_stride=ex.stem_stride, augment=ex.augment)
    config = train.TrainConfig(steps=ex.epochs * spe, batch_size=ex.batch_size,
                               momentum=ex.momentum, log_every=1)
    return comparisons.schedule_runs(make_model, train_set, test_set, runs, config,
                                     seeds=ex.seeds, cache_name="explr-schedules",
                                     eval_every=spe)
