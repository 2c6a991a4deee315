"""Bad input to the BNGD chapter's modules (lib.bngd: dynamics, theory, experiments, figures,
networks) is refused by name, plus the specific cases of issue 12."""

import matplotlib
import numpy as np
import pytest
import torch
from hypothesis import strategies as st

matplotlib.use("Agg")
from matplotlib.figure import Figure  # noqa: E402

from contracts import NAN, INF, Case, parametrize  # noqa: E402
from lib.bngd import draws, dynamics, experiments, figures, networks, theory  # noqa: E402

F64 = dict(dtype=torch.float64)
H = lambda: torch.tensor([1.0, 4.0], **F64)                      # noqa: E731
HM = lambda: torch.tensor([[2.0, 1.0], [1.0, 3.0]], **F64)       # noqa: E731
U = lambda: torch.tensor([0.6, 0.8], **F64)                      # noqa: E731
W = lambda: torch.tensor([1.0, 0.5], **F64)                      # noqa: E731

# numbers or arrays of them: a list of good numbers is valid, so the harness's kinds don't fit
BAD_STEP = st.sampled_from([0.0, -1.0, NAN, INF, -INF, None, "1", {}, 1j, True, [0.1, -1.0], []])
BAD_GAIN = st.sampled_from([NAN, INF, -INF, None, "1", {}, 1j, True, [1.0, NAN], []])
BAD_H = st.sampled_from([None, "H", [1.0, 4.0], torch.tensor([1, 4]), torch.tensor([1.0, NAN]),
                         torch.tensor([1.0, -4.0]), torch.zeros(2), torch.ones(0), torch.ones(2, 3),
                         torch.ones(2, 2, 2), torch.tensor([[1.0, 2.0], [0.0, 1.0]]),
                         torch.tensor([[1.0, 2.0], [2.0, 1.0]])])
BAD_U = st.sampled_from([None, [0.6, 0.8], torch.tensor([1, 2]), torch.tensor([0.6, NAN]),
                         torch.tensor([INF, 0.8]), torch.ones(3), torch.ones(0), torch.ones(1, 2)])
BAD_W = st.sampled_from([None, [1.0, 0.5], torch.tensor([1, 2]), torch.tensor([1.0, NAN]),
                         torch.ones(3), torch.ones(0), torch.zeros(2)])
# u of shape (*batch, d) is one problem per configuration in dynamics: (1, 2) is valid there
BAD_U_DYN = BAD_U.filter(lambda x: not (isinstance(x, torch.Tensor) and x.shape == (1, 2)))
BAD_LOSS = st.sampled_from([None, "x", [], np.ones(0), np.array([True]), 1j * np.ones(2), 3.0])
BAD_PAIR = st.sampled_from([None, (1.0,), (2.0, 1.0), (0.0, 1.0), (1.0, NAN), (1, 2, 3), "ab"])
BAD_OBJ = st.sampled_from([None, 3, "x", object(), {}])

_run = dynamics.bngd(H(), U(), 1.0, W(), [0.1, 1.0], 1.0, 3, trajectory=True)
_prob = experiments.paper_problem(10.0, d=3, start="random")
_sweep = experiments.eps_sweep(_prob, [0.1, 1.0], 3)
_cfg = experiments.Figure1Config(a0=(1.0,), eps=(0.1,), eps_a=(1.0,), steps=2)
_fig1 = experiments.figure1(_prob, _cfg)
_blobs = (torch.randn(20, 5), torch.randint(0, 3, (20,)))
_sweep_cfg = networks.SweepConfig(etas=(0.1,), seeds=1, batch_size=10, tail=1)
_rates = theory.local_rates(H(), U(), dynamics.bngd(H(), U(), 1.0, W(), 0.1, 1.0, 3, trajectory=True), 0.1)
_starts = draws.random_starts(_prob, [0.1], n=3, steps=2)
_mod = draws.modified_draws(torch.ones(2, **F64), [0.1], draws=2, steps=2)
_rot = theory.rotation_check(H(), U(), 1.0, W(), [0.1, 1.0], 1.0, 3, torch.eye(2, **F64), 2.0, 0.5)
BAD_Q = st.sampled_from([None, torch.ones(2, 2, **F64), torch.eye(3, **F64), torch.tensor([[1.0, NAN], [0.0, 1.0]], **F64)])

CASES = [
    # --- lib.bngd.dynamics
    Case(dynamics.as_operator, lambda: dict(H=HM()), {"H": BAD_H, "dtype": "dtype"}),
    Case(dynamics.loss, lambda: dict(matvec=lambda w: w * H(), u=U(), w=W()),
         {"matvec": "callable", "u": BAD_U_DYN, "w": st.sampled_from([None, torch.ones(3), torch.tensor([NAN, 1.0])])}),
    Case(dynamics.gd, lambda: dict(H=H(), u=U(), w0=W(), eps=0.1, steps=2),
         {"H": BAD_H, "u": BAD_U_DYN, "w0": BAD_W.filter(lambda w: not (isinstance(w, torch.Tensor) and w.numel() == 2 and not w.any())),
          "eps": BAD_STEP, "steps": "count", "dtype": "dtype", "history": "bool"}),
    Case(dynamics.bngd, lambda: dict(H=HM(), u=U(), a0=1.0, w0=W(), eps=0.1, eps_a=1.0, steps=2),
         {"H": BAD_H, "u": BAD_U_DYN, "a0": BAD_GAIN, "w0": BAD_W, "eps": BAD_STEP, "eps_a": BAD_STEP,
          "steps": "count", "dtype": "dtype", "trajectory": "bool", "history": "bool"}),
    Case(dynamics.mbngd, lambda: dict(H=H(), u=U(), w0=W(), eps=0.1, steps=2),
         {"H": BAD_H, "u": BAD_U_DYN, "w0": BAD_W, "eps": BAD_STEP, "steps": "count",
          "history": "bool"}),
    # --- lib.bngd.theory
    Case(theory.gd_constants, lambda: dict(H=H()),
         {"H": st.one_of(BAD_H, st.sampled_from([torch.tensor([0.0, 1.0]), torch.diag(torch.tensor([0.0, 1.0]))]))}),
    Case(theory.effective_step, lambda: dict(H=H(), u=U(), a=1.0, w=W(), eps=0.1),
         {"H": BAD_H, "u": BAD_U, "a": BAD_GAIN, "w": BAD_W, "eps": BAD_STEP}),
    Case(theory.residual, lambda: dict(H=HM(), u=U(), w=W()), {"H": BAD_H, "u": BAD_U, "w": BAD_W}),
    Case(theory.residual_recursion_gap, lambda: dict(H=H(), u=U(), result=_run),
         {"H": BAD_H, "u": BAD_U, "result": st.sampled_from(
             [None, _run.loss, dynamics.bngd(H(), U(), 1.0, W(), 0.1, 1.0, 2),
              dynamics.bngd(torch.ones(3, **F64), torch.ones(3, **F64), 1.0, torch.ones(3, **F64), 0.1, 1.0, 2,
                            trajectory=True)])}),
    Case(theory.pseudo_hessian, lambda: dict(H=H(), u=U()),
         {"H": BAD_H, "u": st.one_of(BAD_U, st.just(torch.zeros(2)))}),
    Case(theory.pseudo_condition, lambda: dict(H=H(), u=U()),
         {"H": st.one_of(BAD_H, st.just(torch.tensor([0.0, 1.0]))), "u": BAD_U}),
    Case(theory.steps_to_tolerance, lambda: dict(loss=np.ones((3, 2)), tol=0.5),
         {"loss": BAD_LOSS, "tol": "positive"}),
    Case(theory.local_rates, lambda: dict(H=H(), u=U(), result=_run, eps=[0.1, 1.0]),
         {"H": BAD_H, "u": BAD_U, "eps": st.one_of(BAD_STEP, st.just([0.1, 1.0, 2.0])),
          "result": st.sampled_from([None, _run.loss, dynamics.bngd(H(), U(), 1.0, W(), 0.1, 1.0, 2)])}),
    Case(theory.equivalent_configuration,
         lambda: dict(H=H(), u=U(), a0=1.0, w0=W(), Q=torch.eye(2, **F64), mu=2.0, r=0.5),
         {"H": BAD_H, "u": BAD_U, "a0": BAD_GAIN, "w0": BAD_W, "Q": BAD_Q, "mu": "positive",
          "r": "positive"}),
    Case(theory.rotation_check,
         lambda: dict(H=H(), u=U(), a0=1.0, w0=W(), eps=[0.1], eps_a=1.0, steps=2,
                      Q=torch.eye(2, **F64), mu=2.0, r=0.5),
         {"H": BAD_H, "u": BAD_U, "a0": BAD_GAIN, "w0": BAD_W, "eps": BAD_STEP, "eps_a": BAD_STEP,
          "steps": "count", "Q": BAD_Q, "mu": "positive", "r": "positive"}),
    # --- lib.bngd.draws
    Case(draws.random_starts, lambda: dict(problem=_prob, eps=[0.1], n=2, steps=2, seed=0, tol=1e-3),
         {"problem": BAD_OBJ, "eps": BAD_STEP, "n": "size", "steps": "size", "seed": "seed",
          "tol": "positive"}),
    Case(draws.saddle_start, lambda: dict(problem=_prob), {"problem": BAD_OBJ}),
    Case(draws.saddle_escape, lambda: dict(problem=_prob, etas=[0.0, 1e-3], eps=1.0, steps=2),
         {"problem": BAD_OBJ, "etas": st.sampled_from([None, "x", [-1.0], [NAN], [[0.0]], []]),
          "eps": "positive", "steps": "size"}),
    Case(draws.sphere, lambda: dict(n=2, d=3, gen=torch.Generator()), {"n": "size", "d": "size", "gen": BAD_OBJ}),
    Case(draws.gmean, lambda: dict(x=np.ones(3), axis=-1), {"x": st.sampled_from([None, "x", [-1.0], [NAN], []])}),
    Case(draws.modified_draws, lambda: dict(h=torch.ones(2, **F64), eps=[0.1], draws=2, steps=2, seed=0),
         {"h": st.sampled_from([None, [1.0, 2.0], torch.tensor([1.0, 0.0], **F64), torch.tensor([1.0, NAN], **F64),
                                torch.ones(2, 2, **F64)]),
          "eps": BAD_STEP, "draws": "size", "steps": "size", "seed": "seed"}),
    Case(draws.gd_losses, lambda: dict(result=_mod, eps=[0.1, 1.0]),
         {"result": st.sampled_from([None, 3, _starts]), "eps": BAD_STEP}),
    # --- lib.bngd.experiments
    Case(experiments.Problem, lambda: dict(h=torch.ones(2, **F64), u=U(), w0=W()),
         {"h": st.sampled_from([None, [1.0, 2.0], torch.tensor([1.0, -1.0]), torch.ones(2, 2)]),
          "u": BAD_U, "w0": st.sampled_from([None, torch.ones(3), torch.tensor([NAN, 1.0])])}),
    Case(experiments.paper_problem, lambda: dict(kappa=10.0, d=3, seed=0, start="Hu", device="cpu"),
         {"kappa": st.sampled_from([0.5, 0.0, -1.0, NAN, INF, None, "10", True]), "d": "size",
          "seed": "seed", "start": "name",
          "device": st.sampled_from(["bogus", "gpu", 3, [], "cpu:x"])}),   # None means the CPU
    Case(experiments.first_step_margin, lambda: dict(p=_prob), {"p": BAD_OBJ}),
    Case(experiments.Figure1Config, lambda: dict(a0=(1.0,), eps=(0.1,), eps_a=(1.0,), steps=2),
         {"a0": BAD_GAIN, "eps": BAD_STEP, "eps_a": BAD_STEP, "steps": "size",
          "close": st.sampled_from([0.0, 1.0, 1.5, NAN, None]), "floor": "nonneg"}),
    Case(experiments.Figure1Result, lambda: dict(problem=_prob, config=_cfg, loss=np.ones((1, 1, 1)),
                                                 eff_step=np.ones((1, 1, 1)), loss_gd=0.1, seconds=0.1),
                  {"problem": BAD_OBJ, "config": BAD_OBJ}),
    Case(experiments.classify, lambda: dict(loss_bn=np.ones(3), eff_step=np.ones(3), loss_gd=0.1, eps_opt=1.0,
                                            floor=1e-12, close=0.8),
                  {"loss_bn": BAD_LOSS, "eff_step": st.one_of(BAD_LOSS, st.just(np.ones(2))),
                   "loss_gd": st.sampled_from([NAN, None, "1", True]), "eps_opt": "positive", "floor": "nonneg",
                   "close": st.sampled_from([0.0, 1.0, 1.5, NAN, None])}),
    Case(experiments.figure1, lambda: dict(problem=_prob, config=_cfg), {"problem": BAD_OBJ, "config": BAD_OBJ}),
    Case(experiments.eps_sweep, lambda: dict(problem=_prob, eps=[0.1, 1.0], steps=2, a0=1.0, eps_a=1.0),
         {"problem": BAD_OBJ, "eps": BAD_STEP, "steps": "count", "a0": BAD_GAIN, "eps_a": BAD_STEP}),
    Case(experiments.best_rates, lambda: dict(problem=_prob), {"problem": BAD_OBJ}),
    Case(experiments.gd_rates, lambda: dict(kappa=10.0, steps=4, n_eps=3, eps_range=(1e-2, 1.0)),
         {"kappa": st.sampled_from([0.5, NAN, INF, None, True]),
          "steps": st.one_of(st.integers(max_value=1), st.sampled_from([2.5, NAN, None, True])),
          "n_eps": "size", "eps_range": BAD_PAIR}),
    Case(experiments.slider_run, lambda: dict(eps=1.0, eps_a=1.0, a0=1.0, kappa=10.0, steps=2, batch_eps=(1.0,)),
         {"eps": "positive", "eps_a": "positive", "a0": "finite",
          "kappa": st.sampled_from([0.5, NAN, INF, None, True]), "steps": "size",
          "batch_eps": st.sampled_from([None, "x", (1.0, -1.0), (NAN,), ((1.0,),)])}),
    # --- lib.bngd.figures
    Case(figures.draw_gd_rates, lambda: dict(fig=Figure(), eps_range=(1e-5, 10.0), ylim=(0.3, 3e6)),
         {"fig": BAD_OBJ, "eps_range": BAD_PAIR, "ylim": BAD_PAIR}, examples=4),
    Case(figures.dynamics, lambda: dict(run=_run, eps=[0.1, 1.0], gd=theory.gd_constants(H()), c=1.0),
         {"run": st.sampled_from([None, _sweep, dynamics.bngd(H(), U(), 1.0, W(), 0.1, 1.0, 2)]),
          "eps": st.sampled_from([None, [0.1], [0.1, -1.0]]), "gd": BAD_OBJ, "c": "positive"}, examples=4),
    Case(figures.scaling, lambda: dict(k=np.arange(4), base=np.ones((4, 2)), scaled=[np.ones((4, 2))], rs=[2.0],
                                       eps=[0.1, 1.0]),
              {"k": BAD_LOSS, "base": st.sampled_from([None, np.ones((3, 2)), np.ones((4, 3))]),
               "scaled": st.sampled_from([None, np.ones((4, 2)), [np.ones((3, 2))]]),
               "rs": st.sampled_from([None, [-1.0], [1.0, 2.0]]), "eps": st.sampled_from([None, [0.1]])},
              examples=4),
    Case(figures.eps_sweeps, lambda: dict(sweep=_sweep, sweep_hu=_sweep, tol=1e-3, show=(0.1,)),
         {"sweep": BAD_OBJ, "sweep_hu": BAD_OBJ, "tol": "positive", "show": BAD_STEP}, examples=4),
    Case(figures.acceleration, lambda: dict(sweep=_sweep, k=np.arange(4), curves={"a": np.ones(4)}, rates={"r": 0.9}),
         {"sweep": BAD_OBJ, "k": BAD_LOSS, "curves": st.sampled_from([None, {}, {"a": np.ones(3)}]),
          "rates": st.sampled_from([None, {"r": NAN}, {"r": -1.0}])}, examples=4),
    Case(figures.figure1, lambda: dict(results=[_fig1]),
         {"results": st.sampled_from([None, [], [None], _fig1, [_fig1, experiments.Figure1Result(
             _prob, experiments.Figure1Config(a0=(2.0,), eps=(0.1,), eps_a=(1.0,), steps=2),
             np.ones((1, 1, 1)), np.ones((1, 1, 1)), 0.1, 0.1)]])}, examples=4),
    Case(figures.eta_sweeps, lambda: dict(panels={"n": {"x": np.ones((2, 2))}}, etas={"n": [0.1, 1.0]}),
         {"panels": st.sampled_from([None, {}, {"n": None}, {"n": {"x": np.ones((3, 2))}}]),
          "etas": st.sampled_from([None, {}, {"n": [0.1, -1.0]}, {"n": [0.1]}])}, examples=4),
    Case(figures.scaled_networks, lambda: dict(etas=[0.1, 1.0], losses=np.ones((2, 2, 3)), rs=[1.0, 10.0]),
         {"etas": BAD_STEP, "losses": st.sampled_from([None, np.ones((2, 3)), np.ones((1, 2, 3))]),
          "rs": BAD_STEP}, examples=4),
    Case(figures.draw_bngd_slider, lambda: dict(fig=Figure(), steps=3, ylim=(1e-14, 1e3), eff_ylim=(1e-8, 1e2)),
         {"fig": BAD_OBJ, "steps": "size", "ylim": BAD_PAIR, "eff_ylim": BAD_PAIR}, examples=4),
    Case(figures.local_rates, lambda: dict(rates=_rates), {"rates": st.sampled_from([None, 3, theory.local_rates(
        H(), U(), dynamics.bngd(H(), U(), 1.0, W(), [0.1, 1.0], 1.0, 2, trajectory=True), 0.1)])}, examples=3),
    Case(figures.random_starts, lambda: dict(result=_starts, escape=np.ones((3, 2)), etas=[0.0, 1e-3]),
         {"result": BAD_OBJ, "escape": st.sampled_from([None, np.ones((3, 3)), np.ones(3)]),
          "etas": st.sampled_from([None, "x", [NAN, 1.0]])}, examples=3),
    Case(figures.modified_draws, lambda: dict(result=_mod), {"result": BAD_OBJ}, examples=3),
    Case(figures.rotation, lambda: dict(check=_rot, eps=[0.1, 1.0]),
         {"check": st.sampled_from([None, 3, _rates]),
          "eps": st.sampled_from([None, [0.1], [0.1, -1.0], [[0.1, 1.0]]])}, examples=4),
    Case(figures.draws_sweeps, lambda: dict(by_d={2: _mod}, by_kappa={1.0: _mod}),
         {"by_d": st.sampled_from([None, {}, {2: None}]), "by_kappa": st.sampled_from([None, {}, {1.0: 3}])},
         examples=3),
    # --- lib.bngd.networks
    Case(networks.OneLayer, lambda: dict(n_in=4, n_out=3, bn=True, eps=1e-3, norm="bn"),
         {"n_in": "size", "n_out": "size", "bn": "bool", "eps": "nonneg", "norm": "name"}),
    Case(networks.ConvNet, lambda: dict(in_channels=1, image_size=8, width=2, hidden=3, n_out=2, bn=True, eps=1e-3),
         {"in_channels": "size", "image_size": st.one_of(st.integers(max_value=3), st.sampled_from([8.0, None, True])),
          "width": "size", "hidden": "size", "n_out": "size", "bn": "bool", "eps": "nonneg"}),
    Case(networks.make_one_layer, lambda: dict(seed=0, bn=True, scale=1.0, n_in=4, n_out=3),
         {"seed": "seed", "bn": "bool", "scale": "positive", "n_in": "size"}),
    Case(networks.make_conv_net, lambda: dict(seed=0, bn=True, image_size=8, width=2, hidden=3),
         {"seed": "seed", "bn": "bool", "width": "size"}),
    Case(networks.SweepConfig, lambda: dict(etas=(0.1,), seeds=1, batch_size=10, eta_g=0.1, loss="mse", tail=1),
         {"etas": BAD_STEP, "seeds": "size", "batch_size": "size", "eta_g": "positive", "loss": "name",
          "tail": "size"}),
    Case(networks.eta_sweep, lambda: dict(make_model=networks.make_one_layer, data=_blobs, scheme="gd", config=_sweep_cfg,
                                         cache=None, axes=None, n_in=5, n_out=3),
               {"make_model": "callable", "data": st.sampled_from([None, "x", (torch.ones(0, 5), torch.ones(0)),
                                                                    (torch.full((20, 5), NAN), _blobs[1])]),
                "scheme": "name", "config": BAD_OBJ, "cache": st.sampled_from([3, b"x"]),
                "axes": st.sampled_from([3, "scale", [1.0]])}, examples=6),
    Case(networks.end_of_epoch_loss, lambda: dict(loss=np.ones((2, 5)), tail=2),
         {"loss": BAD_LOSS, "tail": st.one_of(st.integers(max_value=0), st.integers(min_value=6),
                                               st.sampled_from([2.0, None, True, NAN]))}),
]

EXEMPT = {
    dynamics.GDResult: "a record of outputs that dynamics.gd builds; it takes no input of a caller",
    dynamics.BNGDResult: "a record of outputs that dynamics.bngd builds; functions taking one check its type",
    theory.GDConstants: "a record of numbers that theory.gd_constants computes from a checked H",
    experiments.EpsSweep: "a record of outputs that experiments.eps_sweep builds from checked inputs",
    theory.LocalRates: "a record of outputs that theory.local_rates computes from a checked run",
    draws.StartsResult: "a record of outputs that draws.random_starts builds from checked inputs",
    draws.DrawsResult: "a record of outputs that draws.modified_draws builds from checked inputs",
    theory.RotationCheck: "a record of outputs that theory.rotation_check computes from checked runs",
}

test_bad_input_is_refused_by_name = parametrize(CASES)


# --- the specific cases of issue 12 -------------------------------------------------------

def test_gd_refuses_an_indefinite_h_instead_of_returning_a_negative_loss():
    indefinite = torch.tensor([[1.0, 2.0], [2.0, 1.0]], **F64)      # eigenvalues 3 and −1
    with pytest.raises(ValueError, match="^H must be positive semi-definite"):
        dynamics.gd(indefinite, U(), W(), 0.1, 3)
    with pytest.raises(ValueError, match="^H must be symmetric"):
        dynamics.gd(torch.tensor([[1.0, 1e-6], [0.0, 1.0]], **F64), U(), W(), 0.1, 3)
    with pytest.raises(ValueError, match=r"^H as a 1-D array means diag\(H\)"):
        dynamics.bngd(torch.tensor([1.0, -1.0], **F64), U(), 1.0, W(), 0.1, 1.0, 3)
    # symmetric up to round-off and PSD up to round-off are accepted
    A = torch.randn(5, 3, generator=torch.Generator().manual_seed(0), **F64)
    psd = A @ A.T                                                     # rank 3: λ_min ≈ ±1e-16
    assert torch.all(dynamics.gd(psd, torch.ones(5, **F64), torch.zeros(5, **F64), 0.01, 5).loss >= -1e-12)


def test_gd_rates_needs_steps_to_measure_a_rate():
    for steps, err in ((0, ValueError), (1, ValueError), (-3, ValueError), (2.0, TypeError)):
        with pytest.raises(err, match="^steps must be an integer >= 2"):
            experiments.gd_rates(10.0, steps=steps)


@pytest.mark.parametrize("tail", [0, -1, 100])
def test_end_of_epoch_loss_tail_must_fit_the_record(tail):
    with pytest.raises(ValueError, match=r"^tail must be an integer in \[1, 5\]"):
        networks.end_of_epoch_loss(np.ones((2, 5)), tail)
    with pytest.raises(TypeError, match="^tail"):
        networks.end_of_epoch_loss(np.ones((2, 5)), 2.0)


@pytest.mark.parametrize("arg, bad, err", [
    ("u", torch.tensor([NAN, 0.8]), ValueError), ("w0", torch.tensor([1.0, INF]), ValueError),
    ("H", torch.tensor([1.0, NAN]), ValueError), ("eps", 0.0, ValueError), ("eps", NAN, ValueError),
    ("eps", -1.0, ValueError), ("eps_a", 0.0, ValueError), ("eps_a", NAN, ValueError),
    ("u", torch.ones(3, **F64), ValueError), ("w0", torch.ones(3, **F64), ValueError),
    ("H", torch.ones(3, **F64), ValueError), ("a0", INF, ValueError), ("eps", "0.1", TypeError),
])
def test_bngd_refuses_non_finite_non_positive_and_mismatched_input_by_name(arg, bad, err):
    # H of another size is checked first, so the mismatch is reported on u, naming both
    match = r"^u must have last dimension d = 3 \(the size of H\)" if arg == "H" and bad.shape == (3,) \
        else f"^{arg} "
    args = dict(H=H(), u=U(), a0=1.0, w0=W(), eps=0.1, eps_a=1.0, steps=3)
    with pytest.raises(err, match=match):
        dynamics.bngd(**{**args, arg: bad})
    if arg not in ("eps_a", "a0"):
        gd_args = {k: v for k, v in args.items() if k not in ("a0", "eps_a")}
        with pytest.raises(err, match=match):
            dynamics.gd(**{**gd_args, arg: bad})


def test_divergence_stays_a_result():
    """A step size past 2/λ_max is valid input: GD's loss grows (to inf), no exception."""
    res = dynamics.gd(H(), U(), W(), 10.0, 600)
    assert not torch.isfinite(res.loss[-1]) or res.loss[-1] > 1e100
