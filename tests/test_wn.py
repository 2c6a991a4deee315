"""lib.wn.networks, lib.wn.training, lib.wn.theory, lib.wn.experiments, lib.wn.figures: weight-normalised two-layer
ReLU networks (Dukler, Gu & Montúfar 2020), checked against independent computations."""

import math

import matplotlib
import numpy as np
import pytest
import torch

from lib import scale
from lib.wn import experiments, figures, networks, theory, training

matplotlib.use("Agg")
EPS = np.finfo(np.float64).eps


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NORMBOOK_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("NORMBOOK_BUILD", raising=False)


@pytest.fixture(scope="module")
def data():
    return experiments.unit_sphere_data(12, 6, seed=3)


def numpy_forward(v, g, c, X):
    """Independent NumPy evaluation of (1/√m) Σ_k c_k ReLU(g_k v_kᵀx/‖v_k‖)."""
    v, g, c, X = (np.asarray(t, dtype=float) for t in (v, g, c, X))
    pre = X @ (v / np.linalg.norm(v, axis=1, keepdims=True)).T * g
    return np.maximum(pre, 0) @ c / np.sqrt(len(c))


def perturbed(p, seed=0, flip=0.25):
    """Parameters away from initialisation, with a share of negative lengths g_k."""
    gen = torch.Generator().manual_seed(seed)
    signs = torch.where(torch.rand(p.width, generator=gen, dtype=p.g.dtype) < flip, -1.0, 1.0)
    return networks.WNParams(p.v + 0.3 * torch.randn(p.v.shape, generator=gen, dtype=p.v.dtype),
                             p.g * signs * (1 + 0.2 * torch.rand(p.width, generator=gen,
                                                                 dtype=p.g.dtype)),
                             p.c)


# --- data, initialisation, forward -------------------------------------------------------
def test_unit_sphere_data_is_seeded_unit_norm_with_bounded_targets():
    X, y = experiments.unit_sphere_data(30, 7, seed=5)
    assert X.shape == (30, 7) and y.shape == (30,) and X.dtype == torch.float64
    np.testing.assert_allclose(X.norm(dim=1).numpy(), 1.0, atol=1e-14)
    assert y.abs().max() <= 1
    X2, y2 = experiments.unit_sphere_data(30, 7, seed=5)
    assert torch.equal(X, X2) and torch.equal(y, y2)
    assert not torch.equal(X, experiments.unit_sphere_data(30, 7, seed=6)[0])


def test_init_wn_follows_the_paper_initialisation():
    for alpha in (0.1, 1.0, 10.0):
        p = networks.init_wn(6, 5000, alpha, seed=1)
        assert p.v.shape == (5000, 6) and p.g.shape == (5000,) and p.c.shape == (5000,)
        torch.testing.assert_close(p.g, p.v.norm(dim=1) / alpha, rtol=1e-15, atol=0)
        assert set(p.c.tolist()) == {-1.0, 1.0}
        assert abs(p.c.mean()) < 0.05                      # ±1 with equal odds
        assert abs(p.v.std().item() / alpha - 1) < 0.02    # v ~ N(0, α² I)
    z = networks.init_wn(6, 50, 1.0, seed=2).v
    torch.testing.assert_close(networks.init_wn(6, 50, 7.5, seed=2).v / 7.5, z, rtol=1e-15, atol=0)


def test_forward_matches_numpy_at_arbitrary_parameters(data):
    X, _ = data
    p = perturbed(networks.init_wn(6, 40, 0.7, seed=0))
    np.testing.assert_allclose(networks.forward(p, X).numpy(), numpy_forward(p.v, p.g, p.c, X),
                               rtol=1e-12)
    w = p.weights()                                         # w_k = g_k v_k/‖v_k‖, same function
    np.testing.assert_allclose(networks.forward(p, X).numpy(),
                               (torch.relu(X @ w.T) @ p.c / math.sqrt(40)).numpy(), rtol=1e-12)


def test_initial_function_does_not_depend_on_alpha(data):
    X, _ = data
    out = theory.initial_outputs(X, alphas=[0.01, 0.3, 1.0, 20.0, 500.0], width=64, seed=4)
    z, c = networks.init_wn(6, 64, 1.0, seed=4).v, networks.init_wn(6, 64, 1.0, seed=4).c
    reference = numpy_forward(z, z.norm(dim=1), c, X)       # un-normalised net with w = z
    for key, f0 in out.items():
        np.testing.assert_allclose(f0.numpy(), reference, rtol=1e-12, atol=1e-14, err_msg=str(key))


# --- Proposition 1 and Observation 1 --------------------------------------------------------
@pytest.mark.parametrize("alpha", [0.1, 1.0, 10.0])
def test_jacobian_blocks_are_V_over_alpha_squared_and_G(data, alpha):
    X, _ = data
    for p in (networks.init_wn(6, 30, alpha, seed=1), perturbed(networks.init_wn(6, 30, alpha, seed=1))):
        Jv, Jg = theory.jacobians(p, X)                  # autograd
        V, G = networks.gram_matrices(p, X, alpha)                # closed form
        assert (theory.gram(Jv) - V / alpha**2).abs().max() < 1e-10
        assert (theory.gram(Jg) - G).abs().max() < 1e-10
        torch.testing.assert_close(networks.evolution_kernel(p, X), V / alpha**2 + G,
                                   rtol=1e-12, atol=1e-14)


def test_at_alpha_one_the_kernel_is_the_unnormalised_ntk(data):
    X, _ = data
    p = networks.init_wn(6, 50, 1.0, seed=2)
    H_autograd = theory.gram(theory.plain_jacobian(p.weights(), p.c, X))
    V, G = networks.gram_matrices(p, X, 1.0)
    assert (V + G - H_autograd).abs().max() < 1e-10
    assert (theory.plain_ntk(p.weights(), X) - H_autograd).abs().max() < 1e-10
    rows = {r["alpha"]: r for r in theory.decomposition_errors(X, [0.5, 1.0, 2.0], width=50)}
    assert rows[1.0]["Lambda - H"] < 1e-10
    assert rows[0.5]["Lambda - H"] > 1e-2 and rows[2.0]["Lambda - H"] > 1e-2   # only at α = 1
    assert all(r["JvJv - V/a^2"] < 1e-10 and r["JgJg - G"] < 1e-10 for r in rows.values())


def test_gram_matrices_at_initialisation_do_not_depend_on_alpha(data):
    X, _ = data
    V1, G1 = networks.gram_matrices(networks.init_wn(6, 80, 1.0, seed=3), X, 1.0)
    for alpha in (0.05, 3.0, 40.0):
        V, G = networks.gram_matrices(networks.init_wn(6, 80, alpha, seed=3), X, alpha)
        torch.testing.assert_close(V, V1, rtol=1e-12, atol=1e-14)
        torch.testing.assert_close(G, G1, rtol=1e-12, atol=1e-14)


def test_natural_gradient_form_of_the_kernel(data):
    X, _ = data
    for p in (networks.init_wn(6, 30, 0.4, seed=0), perturbed(networks.init_wn(6, 30, 0.4, seed=0), seed=2)):
        K = theory.natural_gradient_kernel(p, X)
        assert (K - networks.evolution_kernel(p, X)).abs().max() < 1e-10
    # at initialisation S = v̂v̂ᵀ + α⁻²(I − v̂v̂ᵀ): build J_w S J_wᵀ with dense matrices
    p = networks.init_wn(6, 8, 0.4, seed=0)
    Jw = theory.plain_jacobian(p.weights(), p.c, X).reshape(len(X), -1)
    u = p.v / p.v.norm(dim=1, keepdim=True)
    eye = torch.eye(6, dtype=X.dtype)
    S = torch.block_diag(*[torch.outer(a, a) + (eye - torch.outer(a, a)) / 0.4**2 for a in u])
    assert (Jw @ S @ Jw.T - networks.evolution_kernel(p, X)).abs().max() < 1e-10


def test_least_eigenvalue_of_the_autograd_kernel_obeys_both_bounds(data):
    """The chapter's λ_min(Λ) ≥ max(λ_min(V)/α², λ_min(G)), with Λ from autograd (not from
    V and G) at initialisation and away from it: a split that overstates a part fails."""
    X, _ = data
    for alpha in (0.1, 1.0, 5.0, 50.0):
        p0 = networks.init_wn(6, 200, alpha, seed=0)
        for p in (p0, perturbed(p0, seed=1)):
            Jv, Jg = theory.jacobians(p, X)
            lam = theory.least_eigenvalue(theory.gram(Jv) + theory.gram(Jg))
            V, G = networks.gram_matrices(p, X, alpha)
            # entries of the two kernels are sums of m terms (round-off ≤ m·ε·max|Λ|), and
            # Weyl moves every eigenvalue by at most n times the largest entry error
            tol = 4 * len(X) * p.width * EPS * theory.largest_eigenvalue(V / alpha**2 + G)
            lam_V, lam_G = theory.least_eigenvalue(V), theory.least_eigenvalue(G)
            assert lam_V >= -tol * alpha**2 and lam_G >= -tol          # Gram matrices: PSD
            assert lam >= max(lam_V / alpha**2, lam_G) - tol, (alpha, lam, lam_V, lam_G)


def direction_averages(Xn, samples, seed, chunk=25_000):
    """Means and standard errors of the H, V, G terms over directions û uniform on the sphere,
    each from the paper's definition: x_iᵀx_j, ⟨x_i^⊥, x_j^⊥⟩ with x^⊥ = x − ⟨x, û⟩û (an
    explicit projection, not H − G) and ⟨x_i, û⟩⟨x_j, û⟩, times 𝟙{⟨x_i, û⟩ ≥ 0}𝟙{⟨x_j, û⟩ ≥ 0}.
    Returns {name: (mean (n, n), standard error (n, n))}, in NumPy only."""
    rng, n = np.random.default_rng(seed), len(Xn)
    sums = {k: np.zeros((2, n, n)) for k in "HVG"}
    for start in range(0, samples, chunk):
        u = rng.standard_normal((min(chunk, samples - start), Xn.shape[1]))
        u /= np.linalg.norm(u, axis=1, keepdims=True)
        proj = u @ Xn.T                                         # (N, n) ⟨x_i, û⟩
        act = (proj >= 0).astype(float)
        both = act[:, :, None] * act[:, None, :]
        perp = Xn[None] - proj[..., None] * u[:, None, :]       # (N, n, d) x_i^⊥
        terms = {"H": (Xn @ Xn.T)[None] * both,
                 "V": np.einsum("kid,kjd->kij", perp, perp) * both,
                 "G": proj[:, :, None] * proj[:, None, :] * both}
        for k, t in terms.items():
            sums[k] += [t.sum(0), (t**2).sum(0)]
    out = {}
    for k, (s1, s2) in sums.items():
        mean = s1 / samples
        out[k] = (mean, np.sqrt(np.maximum(s2 / samples - mean**2, 0) / samples))
    return out


@pytest.fixture(scope="module")
def directions(data):
    """Independent Monte Carlo of the limit kernels on the module's data: 200k directions."""
    return direction_averages(data[0].numpy(), 200_000, seed=0)


def test_limit_kernels_against_independent_monte_carlo(data, directions):
    """Closed forms vs NumPy averages of the definitions, within 5 standard errors each."""
    X, _ = data
    for name, K in zip("HVG", networks.limit_kernels(X)):
        mean, se = directions[name]
        z = np.abs(mean - K.numpy()) / (se + 1e-300)
        assert np.all((z < 5) | (np.abs(mean - K.numpy()) < 1e-12)), (name, z.max())


def circle_means(theta, nodes=20):
    """Over φ uniform on [0, 2π): (mean 𝟙{cos φ ≥ 0}𝟙{cos(φ − θ) ≥ 0},
    mean ReLU(cos φ)·ReLU(cos(φ − θ))), by Gauss–Legendre between the kinks (exact for the
    indicator, spectrally accurate for the smooth products of cosines in between)."""
    kinks = np.mod([np.pi / 2, -np.pi / 2, theta + np.pi / 2, theta - np.pi / 2], 2 * np.pi)
    edges = np.concatenate([[0.0], np.sort(kinks), [2 * np.pi]])
    t, w = np.polynomial.legendre.leggauss(nodes)
    both = prod = 0.0
    for a, b in zip(edges[:-1], edges[1:]):
        phi = (a + b) / 2 + (b - a) / 2 * t
        ci, cj = np.cos(phi), np.cos(phi - theta)
        act = (ci >= 0) & (cj >= 0)
        both += (b - a) / 2 * np.sum(w * act)
        prod += (b - a) / 2 * np.sum(w * act * ci * cj)
    return both / (2 * np.pi), prod / (2 * np.pi)


def test_limit_kernels_against_quadrature_in_the_plane_of_each_pair(data):
    """H∞, V∞, G∞ from their definitions by quadrature, independently of the closed forms.

    ⟨x_i, û⟩ and ⟨x_j, û⟩ only see the projection of û on the plane of x_i and x_j, in polar
    coordinates (r, φ): r cos φ and r cos(φ − θ_ij), with φ uniform and independent of r, and
    E r² = 2/d (each coordinate of û has E û_k² = 1/d). So H∞ = cos θ·P(both active),
    G∞ = (2/d)·E[ReLU(cos φ)ReLU(cos(φ − θ))] and V∞ = E[(cos θ − r² cos φ cos(φ − θ))𝟙𝟙],
    the definition ⟨x_i^⊥, x_j^⊥⟩ = x_iᵀx_j − ⟨x_i, û⟩⟨x_j, û⟩ of the orthogonal parts.
    """
    X, _ = data
    Xn, (n, d) = X.numpy(), X.shape
    quad = {k: np.zeros((n, n)) for k in "HVG"}
    for i in range(n):
        for j in range(n):   # the angle, accurate also at θ = 0 (arccos is not)
            theta = 2 * np.arctan2(np.linalg.norm(Xn[i] - Xn[j]), np.linalg.norm(Xn[i] + Xn[j]))
            both, prod = circle_means(theta)
            quad["H"][i, j] = np.cos(theta) * both
            quad["G"][i, j] = 2 / d * prod
            quad["V"][i, j] = np.cos(theta) * both - 2 / d * prod
    # off the diagonal the closed forms' arccos(x_iᵀx_j) carries round-off d·ε/sin θ; on it,
    # arccos(1 − d·ε) = √(2dε) ≈ 5e-8, and |∂K/∂θ| < 1
    cos = np.abs(Xn @ Xn.T)[~np.eye(n, dtype=bool)]
    assert cos.max() < 0.999                                 # sin θ > 0.04: no near-parallel pair
    atol = np.where(np.eye(n, dtype=bool), math.sqrt(2 * d * EPS), 1e-12)
    for name, K in zip("HVG", networks.limit_kernels(X)):
        assert np.all(np.abs(K.numpy() - quad[name]) <= atol), name
    # the diagonals: P(active) = 1/2 and E⟨x, û⟩² = 1/d, so 1/2, 1/(2d) and (d − 1)/(2d)
    for name, value in zip("HVG", (0.5, (d - 1) / (2 * d), 1 / (2 * d))):
        np.testing.assert_allclose(np.diag(quad[name]), value, rtol=1e-14, err_msg=name)


def test_monte_carlo_kernels_converge_to_the_closed_form(data, directions):
    """lib's Monte Carlo (N = 60k, in chunks of unequal size) against the closed forms, each
    entry within 5 standard errors s_ij/√N, with s_ij the spread of one direction's term
    measured by the independent NumPy sample."""
    X, _ = data
    N, n_ind = 60_000, 200_000
    estimates = theory.monte_carlo_kernels(X, samples=N, seed=0, chunk=25_000)
    for name, K, K_mc in zip("HVG", networks.limit_kernels(X), estimates):
        spread = directions[name][1] * math.sqrt(n_ind)          # one direction's std
        tol = 5 * spread / math.sqrt(N) + 1e-12
        assert np.all(np.abs(K_mc.numpy() - K.numpy()) <= tol), name


def test_least_eigenvalues_positive_for_non_parallel_data_only(data):
    X, _ = data
    for K in networks.limit_kernels(X):
        assert theory.least_eigenvalue(K) > 1e-4
    repeated = torch.cat([X, X[:1]])
    for K in networks.limit_kernels(repeated):
        assert abs(theory.least_eigenvalue(K)) < 1e-12


def test_finite_width_grams_concentrate_at_rate_one_over_sqrt_m(data):
    X, _ = data
    widths = [16, 64, 256, 1024, 4096]
    conc = theory.concentration(X, widths, seeds=4)
    for key in ("err_V", "err_G"):
        slope = experiments.loglog_slope(widths, conc[key].mean(1))
        assert -0.7 < slope < -0.35, (key, slope)
    _, V, G = networks.limit_kernels(X)
    assert abs(conc["lam_V"][-1].mean() / theory.least_eigenvalue(V) - 1) < 0.1
    assert abs(conc["lam_G"][-1].mean() / theory.least_eigenvalue(G) - 1) < 0.1


def test_length_kernel_is_singular_with_fewer_units_than_points(data):
    X, _ = data                                      # n = 12 points
    _, G = networks.gram_matrices(networks.init_wn(6, 8, 1.0, seed=0), X, 1.0)
    assert abs(theory.least_eigenvalue(G)) < 1e-12


# --- training ------------------------------------------------------------------------------


def path_rtol(p, X, y, eta, steps, normalized=True, delta=1e-9):
    """Relative tolerance between two code paths of the same GD run (a loop vs vmap, autograd
    vs lib.train), which sum in different orders (and differently with 1 or 2 threads).

    Each step's sums (inner length ≤ n·m) differ by ≤ n·m·ε relative; the run carries a
    perturbation of θ forward with the amplification A it measures here (perturb v by δ,
    compare the loss curves), so after T steps the paths differ by ≤ max(A, 1)·T·n·m·ε.
    """
    h = training.train(p, X, y, eta, steps, normalized=normalized)
    gen = torch.Generator().manual_seed(1)
    q = networks.WNParams(p.v * (1 + delta * torch.randn(p.v.shape, generator=gen, dtype=p.v.dtype)),
                          p.g, p.c)
    hq = training.train(q, X, y, eta, steps, normalized=normalized)
    amp = np.max(np.abs(hq.loss - h.loss) / np.abs(h.loss)) / delta
    return max(amp, 1.0) * steps * X.shape[0] * p.width * EPS


def manual_gd(p, X, y, eta, steps, normalized):
    """Independent GD with torch.autograd on L = ½Σ(f − y)² (no lib.train)."""
    if normalized:
        params = [p.v.clone().requires_grad_(), p.g.clone().requires_grad_()]
        f = lambda: networks._forward(params[0], params[1], p.c, X)  # noqa: E731
    else:
        params = [p.weights().clone().requires_grad_()]
        f = lambda: torch.relu(X @ params[0].T) @ p.c / math.sqrt(p.width)  # noqa: E731
    losses = []
    for t in range(steps + 1):
        loss = 0.5 * (f() - y).pow(2).sum()
        losses.append(loss.item())
        if t == steps:
            break
        grads = torch.autograd.grad(loss, params)
        with torch.no_grad():
            for q, gr in zip(params, grads):
                q -= eta * gr
    return np.array(losses), [q.detach() for q in params]


@pytest.mark.parametrize("normalized", [True, False])
def test_train_is_gradient_descent_on_the_sum_of_squares(data, normalized):
    X, y = data
    p = networks.init_wn(6, 40, 0.5, seed=1)
    h = training.train(p, X, y, eta=0.05, steps=25, normalized=normalized)
    losses, final = manual_gd(p, X, y, 0.05, 25, normalized)
    tol = path_rtol(p, X, y, 0.05, 25, normalized)          # two code paths: see path_rtol
    np.testing.assert_allclose(h.loss, losses, rtol=tol)
    close = lambda a, b: torch.testing.assert_close(a, b, rtol=tol, atol=tol * b.abs().max())  # noqa: E731
    if normalized:
        close(h.params.v, final[0])
        close(h.params.g, final[1])
    else:   # the plain net reports v = w and g = ‖w‖
        close(h.params.v, final[0])
        close(h.params.weights(), final[0])
    assert torch.equal(p.v, networks.init_wn(6, 40, 0.5, seed=1).v)       # input not modified


def test_train_records_kernel_patterns_and_distances(data):
    X, y = data
    p = networks.init_wn(6, 60, 1.0, seed=0)
    h = training.train(p, X, y, eta=0.3, steps=23, observe_every=5)
    assert h.observed.tolist() == [0, 5, 10, 15, 20, 23] and h.step.tolist() == list(range(24))
    eig = lambda K: torch.linalg.eigvalsh(K).numpy()  # noqa: E731
    # a stacked (K = 1) matmul vs a plain one: entries differ by ≤ m·ε·‖Λ‖, eigenvalues
    # by as much (Weyl), so small ones are compared against λ_max
    lam0 = eig(networks.evolution_kernel(p, X))
    np.testing.assert_allclose(h.spectrum[0], lam0, rtol=0, atol=60 * EPS * lam0[-1])
    np.testing.assert_allclose(h.spectrum[-1], torch.linalg.eigvalsh(
        networks.evolution_kernel(h.params, X)).numpy(), rtol=1e-10)
    assert h.sign_changes[0] == 0 and h.dist_v[0] == 0 and h.dist_g[0] == 0
    flips = ((X @ h.params.v.T) * h.params.g >= 0) != (X @ p.v.T >= 0)
    assert h.sign_changes[-1] == pytest.approx(flips.double().mean().item(), abs=1e-15)
    dist = (h.params.v - p.v).norm() / p.v.norm()
    assert h.dist_v[-1] == pytest.approx(dist.item(), rel=1e-12)
    np.testing.assert_array_equal(h.lam_min, h.spectrum[:, 0])
    plain = training.train(p, X, y, eta=0.3, steps=3, normalized=False)
    np.testing.assert_allclose(plain.spectrum[0], torch.linalg.eigvalsh(
        theory.plain_ntk(p.weights(), X)).numpy(), rtol=1e-12)


def test_train_batch_equals_separate_runs(data):
    X, y = data
    ps = [networks.init_wn(6, 30, a, seed=s) for a, s in ((0.3, 0), (1.0, 1), (4.0, 2))]
    etas = [0.01, 0.2, 1.0]
    batch = training.train_batch(ps, X, y, etas, steps=15, observe_every=15)
    for p, eta, hb in zip(ps, etas, batch):
        h = training.train(p, X, y, eta, steps=15, observe_every=15)
        tol = path_rtol(p, X, y, eta, 15)                   # vmap vs one model: see path_rtol
        np.testing.assert_allclose(hb.loss, h.loss, rtol=tol)
        # Λ is quadratic in the Jacobian: ‖δΛ‖ ≤ 2·tol·‖Λ‖, and by Weyl every eigenvalue
        # moves by at most ‖δΛ‖ (so small ones are compared against λ_max, not themselves)
        np.testing.assert_allclose(hb.spectrum, h.spectrum, rtol=0,
                                   atol=2 * tol * h.spectrum.max())
        torch.testing.assert_close(hb.params.v, h.params.v, rtol=tol,
                                   atol=tol * h.params.v.abs().max())


def test_norm_of_v_grows_by_pythagoras_and_gradients_are_orthogonal(data):
    X, y = data
    p = networks.init_wn(6, 50, 0.1, seed=0)
    assert theory.radial_cosines(p, X, y).abs().max() < 1e-12
    eta = 0.2                                      # far past the edge: the norm jumps
    h = training.train(p, X, y, eta=eta, steps=30, observe_every=30).history
    vsq, gsq = h.weight_norm_sq["w"][:, 0], h.grad_norm_sq["w"]
    np.testing.assert_allclose(np.diff(vsq), eta**2 * gsq[:-1], rtol=1e-9)
    assert vsq[-1] > 2 * vsq[0]


def test_linear_convergence_at_the_rate_of_the_kernel(data):
    """A small over-parameterised net: L(t) falls geometrically, at the rate λ_min(Λ) sets."""
    X, y = data
    p = networks.init_wn(6, 400, 1.0, seed=0)
    K0 = networks.evolution_kernel(p, X)
    eta = 1.0 / float(torch.linalg.eigvalsh(K0)[-1])
    h = training.train(p, X, y, eta, steps=200, observe_every=200)
    assert h.loss[-1] < 1e-10 * h.loss[0]
    t = np.arange(20, 120)
    fit = np.polyfit(t, np.log(h.loss[t]), 1, full=True)                     # straight on log scale
    assert fit[1][0] / np.sum((np.log(h.loss[t]) - np.log(h.loss[t]).mean()) ** 2) < 1e-3
    measured = experiments.measured_ratio(h.loss)
    assert abs(measured / experiments.predicted_ratio(K0, eta) - 1) < 0.02
    KT = networks.evolution_kernel(h.params, X)                   # the kernel at the end of training
    assert abs(measured / experiments.predicted_ratio(KT, eta) - 1) < 0.01
    linear = experiments.linear_loss(K0, networks.forward(p, X) - y, eta, 200)   # the linearised curve:
    np.testing.assert_allclose(np.log(h.loss[1:101] / h.loss[0]),    # log-loss within 20 %
                               np.log(linear[1:101] / linear[0]), rtol=0.2)


def test_beyond_the_edge_wn_rescales_itself_while_the_plain_net_diverges(data):
    X, y = data
    p = networks.init_wn(6, 200, 0.1, seed=0)
    edge = 2 / float(torch.linalg.eigvalsh(networks.evolution_kernel(p, X))[-1])
    alpha_eff = lambda h: experiments.effective_alpha(h.history.weight_norm_sq["w"],  # noqa: E731
                                                      h.history.weight_norm_sq["g"][:, :1])
    inside = training.train(p, X, y, 0.3 * edge, steps=150, observe_every=150)
    assert abs(alpha_eff(inside)[0] - 0.1) < 1e-12 and abs(alpha_eff(inside)[-1] / 0.1 - 1) < 0.02
    beyond = training.train(p, X, y, 10 * edge, steps=150, observe_every=150)
    assert alpha_eff(beyond)[-1] > 2 * 0.1 and beyond.loss[-1] < 1e-6 * beyond.loss[0]
    q = networks.init_wn(6, 200, 1.0, seed=0)
    plain_edge = 2 / float(torch.linalg.eigvalsh(theory.plain_ntk(q.weights(), X))[-1])
    just_past = training.train(q, X, y, 1.2 * plain_edge, steps=150, normalized=False, observe_every=150)
    assert just_past.loss[-1] < 1e-6 * just_past.loss[0]     # a narrow window of recovery ...
    plain = training.train(q, X, y, 3 * plain_edge, steps=150, normalized=False, observe_every=150)
    assert plain.diverged_at is not None or plain.loss[-1] > 1e6 * plain.loss[0]   # ... then not


# --- predictions, sweeps and the slider's computation ---------------------------------------
def test_linear_loss_and_ratios_against_direct_iteration():
    gen = torch.Generator().manual_seed(0)
    A = torch.randn(5, 5, generator=gen, dtype=torch.float64)
    K = A @ A.T / 5 + 0.1 * torch.eye(5, dtype=torch.float64)
    r0 = torch.randn(5, generator=gen, dtype=torch.float64)
    eta, r, expected = 0.3, r0.clone(), []
    for _ in range(41):
        expected.append(0.5 * float(r @ r))
        r = r - eta * K @ r
    np.testing.assert_allclose(experiments.linear_loss(K, r0, eta, 40), expected, rtol=1e-10)
    lam = torch.linalg.eigvalsh(K).numpy()
    assert experiments.predicted_ratio(K, eta) == pytest.approx(max((1 - eta * lam) ** 2), rel=1e-14)
    geometric = 3.0 * 0.9 ** np.arange(100)
    assert experiments.measured_ratio(geometric) == pytest.approx(0.9, rel=1e-12)
    floored = np.concatenate([geometric[:50], np.full(50, 1e-30)])   # round-off floor ignored
    assert experiments.measured_ratio(floored, floor=1e-20) == pytest.approx(0.9, rel=1e-12)
    assert experiments.rate_from_ratio((1 - 0.2 * 0.7) ** 2, 0.2) == pytest.approx(0.7, rel=1e-12)


def test_limit_least_eigenvalue_interpolates_between_the_regimes(data):
    X, _ = data
    _, V, G = networks.limit_kernels(X)
    lam_V, lam_G = theory.least_eigenvalue(V), theory.least_eigenvalue(G)
    small, large = experiments.limit_least_eigenvalue(X, [1e-3, 1e4])
    assert small * 1e-6 == pytest.approx(lam_V, rel=1e-3)          # λ_min(V∞)/α², α = 10⁻³
    assert large == pytest.approx(lam_G, rel=1e-3)
    assert experiments.tuned_step(X, 1.0) == pytest.approx(1 / float(torch.linalg.eigvalsh(V + G)[-1]))


def test_limit_edges_rise_to_the_edge_of_the_lengths():
    """The chapter's numbers: 2/λ_max(Λ∞_α) is 4.93 at α = 3 and 5.53 at α = 10, and rises
    to 2/λ_max(G∞) ≈ 5.58; the edge is where GD on the linearised network turns unstable."""
    X, _ = experiments.unit_sphere_data(20, 10, seed=0)                      # the chapter's data
    _, V, G = networks.limit_kernels(X)
    alphas = [0.1, 1.0, 3.0, 10.0, 100.0, 1e4]
    edges = experiments.limit_edges(X, alphas)
    top = 2 / theory.largest_eigenvalue(G)
    assert edges[2] == pytest.approx(4.93, abs=0.005) and edges[3] == pytest.approx(5.53, abs=0.005)
    assert top == pytest.approx(5.58, abs=0.005) and theory.largest_eigenvalue(G) == \
        pytest.approx(0.358, abs=5e-4)
    assert np.all(np.diff(edges) > 0) and np.all(edges < top)           # V∞/α² ⪰ 0 shrinks
    # λ_max(G∞) ≤ λ_max(Λ∞_α) ≤ λ_max(G∞) + λ_max(V∞)/α² (Weyl): the edges close in on top
    gap = top**2 / 2 * theory.largest_eigenvalue(V) / alphas[-1] ** 2
    assert 0 < top - edges[-1] <= gap * (1 + 1e-6)
    assert experiments.limit_edges(X, [10 ** 0.5])[0] == pytest.approx(4.99, abs=0.005)
    # the sweep's finite-width edges (cpu scale: m = 300, three seeds) sit a few per cent
    # above: λ_max(G(0)) scatters by a few per cent, two of the three seeds below the limit
    sz = experiments.sizes(scale.current("cpu"))
    ps = [networks.init_wn(10, sz.width, 100.0, s) for s in range(sz.seeds)]
    finite = np.mean([2 / theory.largest_eigenvalue(networks.evolution_kernel(p, X)) for p in ps])
    assert finite == pytest.approx(5.72, abs=0.005)
    lam_G0 = np.array([theory.largest_eigenvalue(networks.gram_matrices(p, X, 100.0)[1])
                       for p in ps]) * top / 2                          # relative to λ_max(G∞)
    assert np.all(np.abs(lam_G0 - 1) < 0.06) and np.sum(lam_G0 < 1) == 2
    # the definition: r ← (I − ηΛ∞)r stays bounded just below the edge and grows just above
    r0 = torch.ones(20, dtype=X.dtype)
    for a, edge in zip(alphas[:4], edges):
        K = experiments.limit_evolution_kernel(X, a)
        below = experiments.linear_loss(K, r0, 0.99 * edge, 3000)
        above = experiments.linear_loss(K, r0, 1.01 * edge, 3000)
        assert below[-1] <= below[0] and above[-1] > 1e6 * above[0], a

def small_sizes(**kw):
    base = dict(n=12, d=6, width=120, widths=(12, 48, 192), kernel_widths=(10, 100),
                mc_samples=1000, steps=300, seeds=2, etas=(0.01, 0.1, 1.0, 4.0, 10.0),
                alphas=(0.1, 1.0, 30.0, 100.0))
    return experiments.Sizes(**{**base, **kw})


def test_regime_sweep_shows_the_two_regimes_and_the_edge():
    X, y = experiments.unit_sphere_data(20, 10, seed=0)                       # the chapter's data
    sz = small_sizes(n=20, d=10, width=300, etas=(0.01, 0.1, 1.0, 3.16, 10.0))
    rs = experiments.regime_sweep(X, y, sz, cache="test-wn-regimes")
    assert rs.loss.shape == (4, 5, 2, 301) and rs.plain_loss.shape == (5, 2, 301)
    edge = rs.edge()
    assert edge[0] / edge[1] == pytest.approx(0.01, rel=0.25)        # the stable step ∝ α²
    rates = rs.rates()
    measured = np.nanmean(rates, axis=(1, 2))
    predicted = rs.spectrum[..., 0].mean(1)
    assert np.all(np.isfinite(measured))
    rel = measured / predicted - 1                                    # the chapter's table:
    assert np.all(np.abs(rel[2:]) <= 0.1)                # α ≥ 3 (30, 100): within ten per cent
    assert np.all((rel[:2] >= -0.25) & (rel[:2] <= 0))   # α ≤ 1: low, by up to a quarter, ...
    # ... because the kernel shrinks: against λ_min(Λ(t)) averaged over the window [t2/2, t2]
    # of measured_ratio, every rate agrees to within the ten per cent the table allows at
    # α ≥ 3 (measured: ≤ 5 %), a band that excludes λ_min(Λ(0)) at α = 0.1
    window = experiments.window_kernels(X, y, rs, sz.width, every=1)
    assert np.array_equal(np.isfinite(window), np.isfinite(rates))
    assert np.nanmax(np.abs(rates / window - 1)) <= 0.1
    assert np.all(np.abs(np.nanmean(rates / window - 1, axis=(1, 2))) <= 0.06)  # "about 5 %"
    low = rates[0] / rs.spectrum[0, None, :, 0] - 1                    # α = 0.1 against Λ(0)
    assert np.all(low[np.isfinite(low)] < -0.15)
    runs = np.argwhere(np.isfinite(rates))          # by hand: the same stacked run, so exact
    hs = training.train_batch([networks.init_wn(10, sz.width, rs.alphas[a], int(s))
                               for a, _, s in runs], X, y, [rs.etas[e] for _, e, _ in runs],
                              sz.steps)                                 # Λ(t) at every step
    for (a, e, s), h in zip(runs, hs):
        t2 = np.flatnonzero(rs.loss[a, e, s] > 1e-20)[-1]              # measured_ratio's window
        assert window[a, e, s] == pytest.approx(h.lam_min[t2 // 2:t2 + 1].mean(), rel=1e-14)
    assert measured[0] / measured[1] == pytest.approx(100, rel=0.3)   # α < 1: ∝ 1/α²
    assert measured[2] / measured[3] == pytest.approx(1, rel=0.1)     # α ≫ 1: independent of α
    fixed = rs.loss[:, 0, :, -1] / rs.loss[:, 0, :, 0]                # η = 0.01, all stable
    assert np.all(np.diff(np.median(np.log(fixed), -1)) > 0)          # smaller α, faster
    grow = rs.alpha_eff[..., -1] / rs.alpha_eff[..., 0]
    assert np.all(np.abs(grow[0, 0] - 1) < 0.02) and np.all(grow[0, 2] > 2)  # α = 0.1: edge 0.017
    assert np.all(rs.loss[0, 2, :, -1] < 1e-3 * rs.loss[0, 2, :, 0])  # ... yet it converges
    assert np.all((rs.plain_loss[4, :, -1] > 1e6 * rs.plain_loss[4, :, 0])
                  | ~np.isfinite(rs.plain_loss[4, :, -1]))              # the plain net does not
    assert np.isfinite(rs.rates(plain=True)).any()
    plain = np.log(rs.plain_loss[0, :, -1] / rs.plain_loss[0, :, 0])  # follows α = 1 at η = 0.01
    np.testing.assert_allclose(plain, np.log(rs.loss[1, 0, :, -1] / rs.loss[1, 0, :, 0]), rtol=0.05)
    plain_2x = rs.plain_loss[3, :, -1] / rs.plain_loss[3, :, 0]       # η = 3.16 ≈ 2 × its edge
    assert 1.8 < 3.16 / (2 / rs.plain_spectrum[:, -1].mean()) < 2.2
    assert np.all(~np.isfinite(plain_2x) | (plain_2x > 1e6))
    assert np.all(rs.loss[0, 3, :, -1] < 1e-3 * rs.loss[0, 3, :, 0])  # WN, α = 0.1, η = 3.16
    blown = rs.loss[:, -1, :, -1] / rs.loss[:, -1, :, 0]               # η = 10: the lengths blow up
    assert np.all(~np.isfinite(blown) | (blown > 1e6))
    _, _, G = networks.limit_kernels(X)                                      # ... past 2/λ_max(G)
    assert edge[-1] == pytest.approx(2 / float(torch.linalg.eigvalsh(G)[-1]), rel=0.1)
    assert 2 / float(torch.linalg.eigvalsh(G)[-1]) < 10
    again = experiments.regime_sweep(X, y, sz, cache="test-wn-regimes")       # from the cache
    np.testing.assert_array_equal(again.loss, rs.loss)


def test_width_sweep_moves_less_as_width_grows(data):
    X, y = data
    ws = experiments.width_sweep(X, y, small_sizes(widths=(24, 96, 384), steps=100))
    assert ws.loss.shape == (3, 2, 101) and ws.lam_min.shape == (3, 2, 21)
    assert ws.observed.tolist() == list(range(0, 101, 5))
    for key in ("dist_v", "sign_changes"):
        end = getattr(ws, key)[..., -1].mean(1)
        assert np.all(np.diff(end) < 0), key
        assert -0.8 < experiments.loglog_slope(ws.widths, end) < -0.3, key
    np.testing.assert_allclose(ws.linear[..., 0], ws.loss[..., 0], rtol=1e-12)


def test_kernel_drift_on_the_chapter_data_is_small_at_large_width():
    X, y = experiments.unit_sphere_data(20, 10, seed=0)
    ws = experiments.width_sweep(X, y, small_sizes(n=20, d=10, widths=(20, 141, 1000), steps=300))
    drift = np.abs(ws.lam_min[..., -1] / ws.lam_min[..., 0] - 1).mean(1)
    assert drift[2] < drift[1] and drift[2] < 0.1
    final = ws.loss[..., -1] / ws.loss[..., 0]
    assert np.all(final[0] < 1e-8)                          # m = n: converges, but slower
    assert np.all(ws.loss[0, :, -1] > 100 * ws.linear[0, :, -1])


def test_crossover_scale_grows_like_sqrt_d_at_fixed_angles():
    """Exercise 3: padding the inputs with zeros keeps the angles; G∞ shrinks like 1/d."""
    X, _ = experiments.unit_sphere_data(20, 10, seed=0)
    ratio = {}
    for d in (10, 40):
        Xd = torch.cat([X, torch.zeros(20, d - 10, dtype=X.dtype)], 1)
        H, V, G = networks.limit_kernels(Xd)
        ratio[d] = theory.least_eigenvalue(V) / theory.least_eigenvalue(G)   # α*²
        np.testing.assert_allclose((G * d).numpy(), (networks.limit_kernels(X)[2] * 10).numpy(),
                                   rtol=1e-12, atol=1e-15)
    assert 3.8 < ratio[40] / ratio[10] < 4.6


def test_chapter_data_crossover_scale():
    X, _ = experiments.unit_sphere_data(20, 10, seed=0)
    _, V, G = networks.limit_kernels(X)
    ratio = theory.least_eigenvalue(V) / theory.least_eigenvalue(G)
    assert 20 < ratio < 50                   # "some thirty times": α* = √ratio ≈ 4.5 … 7


def test_comparison_grid_batch_equals_single_runs(data):
    X, y = data
    runs = experiments.Comparison(X, y, steps=30, alphas=[0.1, 10.0], etas=[0.01, 1.0])
    alone = experiments.Comparison(X, y, steps=30, alphas=[], etas=[])        # every call trains alone
    for a, e in ((0.1, 0.01), (10.0, 1.0)):
        r, s = runs(a, e, 24), alone(a, e, 24)
        assert r["eta"] == e
        p = networks.init_wn(6, 24, a, 0)           # a grid of 4 in one vmap vs alone: see path_rtol
        tol = max(path_rtol(p, X, y, e, 30), path_rtol(networks.init_wn(6, 24, 1.0, 0), X, y, e, 30,
                                                       normalized=False))
        for key in ("wn", "plain"):
            np.testing.assert_allclose(r[key], s[key], rtol=tol, err_msg=key)
        for key in ("wn_spec0", "wn_specT", "plain_spec0", "plain_specT"):   # Weyl, as above
            np.testing.assert_allclose(r[key], s[key], rtol=0, atol=2 * tol * s[key].max(),
                                       err_msg=key)
    plain_once = training.train(networks.init_wn(6, 24, 1.0, 0), X, y, 1.0, 30, normalized=False)
    tol = path_rtol(networks.init_wn(6, 24, 1.0, 0), X, y, 1.0, 30, normalized=False)
    np.testing.assert_allclose(runs(0.1, 1.0, 24)["plain"], plain_once.loss, rtol=tol)


def test_slider_figure_draws_every_result(data):
    from lib.widgets import InteractiveFigure, Slider
    X, y = data
    runs = experiments.Comparison(X, y, steps=20, alphas=[0.1, 1.0], etas=[0.1, 10.0])
    fig = InteractiveFigure(lambda alpha, eta: runs(alpha, eta, 16),
                            lambda f: figures.draw_comparison(f, steps=20, n=12),
                            [Slider("alpha", "α", 0.1, 1.0, default=1.0, log=True, grid=2),
                             Slider("eta", "η", 0.1, 10.0, default=0.1, log=True, grid=2)])
    a = fig.figure.axes[0]
    np.testing.assert_array_equal(a.lines[0].get_ydata(), runs(1.0, 0.1, 16)["wn"])
    fig.set(eta=10.0)                          # the lengths blow up for every α at η = 10
    assert "blows up" in a.texts[0].get_text()
    assert np.isinf(a.lines[0].get_ydata()[-1])


def test_figures_draw_from_results(data):
    X, y = data
    sz = small_sizes(steps=40)
    p = networks.init_wn(6, 30, 0.1, seed=0)
    run = training.train(p, X, y, 0.1, 40, observe_every=10)
    H, V, G = networks.limit_kernels(X)
    conc = theory.concentration(X, [10, 40], seeds=2)
    rs = experiments.regime_sweep(X, y, sz)
    ws = experiments.width_sweep(X, y, sz)
    grid = np.geomspace(0.1, 100, 5)
    figs = [figures.norm_growth(run, 0.1), figures.kernel_heatmaps(H, V, G),
            figures.concentration([10, 40], conc, 0.1, 0.01),
            figures.regimes(rs, 0.01, (grid, experiments.limit_least_eigenvalue(X, grid)), 0.1, 0.01),
            figures.edge(rs), figures.widths(ws)]
    tuned = experiments.tuned_runs(X, y, sz, [0.5, 5.0])
    kappas = [theory.largest_eigenvalue(K) / theory.least_eigenvalue(K) for K in (V, G, H)]
    fair = figures.fair_comparison((grid, experiments.limit_condition(X, grid)), kappas, rs,
                                   tuned, experiments.best_scale(X, points=11))
    drawn = [ln for ln in fair.axes[1].lines if ln.get_marker() == "s"][0]
    np.testing.assert_allclose(drawn.get_ydata(), tuned.rates().mean(1))   # α sorted already
    figs.append(fair)
    for f in figs:
        assert all(ax.get_xlabel() for ax in f.axes if ax.get_label() != "<colorbar>")
    matplotlib.pyplot.close("all")


def test_sizes_follow_the_book_scale():
    cpu, gpu = experiments.sizes(scale.current("cpu")), experiments.sizes(scale.current("gpu"))
    assert cpu.width == 3 * scale.current("cpu").width and gpu.width > cpu.width
    assert cpu.seeds == scale.current("cpu").seeds and gpu.steps > cpu.steps
    assert len(cpu.etas) == scale.current("cpu").grid - 2 and min(cpu.etas) == pytest.approx(0.01)
    assert any(math.isclose(e, 0.01) for e in cpu.etas)


# --- bad input ------------------------------------------------------------------------------
@pytest.mark.parametrize("call, match", [
    (lambda: networks.init_wn(6, 0, 1.0), "width"),
    (lambda: networks.init_wn(0, 5, 1.0), "n_in"),
    (lambda: networks.init_wn(6, 5, 0.0), "alpha"),
    (lambda: networks.init_wn(6, 5, -1.0), "alpha"),
    (lambda: networks.init_wn(6, 5, float("nan")), "alpha"),
    (lambda: networks.init_wn(6, 5, 1.0, seed=-1), "seed"),
    (lambda: experiments.unit_sphere_data(10, 1), "d"),
    (lambda: networks.forward(networks.init_wn(6, 5, 1.0), torch.ones(3, 4, dtype=torch.float64)), "columns"),
    (lambda: networks.forward(networks.init_wn(6, 5, 1.0), torch.ones(6)), "^X must have 2"),
    (lambda: networks.gram_matrices(networks.init_wn(6, 5, 1.0), experiments.unit_sphere_data(4, 6)[0], 0), "alpha"),
    (lambda: networks.limit_kernels(2 * experiments.unit_sphere_data(4, 6)[0]), "unit norm"),
    (lambda: training.train(networks.init_wn(6, 5, 1.0), *experiments.unit_sphere_data(4, 6), eta=0, steps=3), "eta"),
    (lambda: training.train(networks.init_wn(6, 5, 1.0), *experiments.unit_sphere_data(4, 6), eta=0.1, steps=0),
     "steps"),
    (lambda: training.train(networks.init_wn(6, 5, 1.0), experiments.unit_sphere_data(4, 6)[0], torch.ones(3),
                            eta=0.1, steps=3), "^X and y must have the same length"),
    (lambda: training.train(networks.init_wn(6, 5, 1.0), *experiments.unit_sphere_data(4, 6), eta=0.1, steps=9,
                            log_every=2, observe_every=3), "multiple"),
    (lambda: training.train_batch([networks.init_wn(6, 5, 1.0)], *experiments.unit_sphere_data(4, 6), etas=[0.1, 0.2],
                                  steps=3), "^etas must hold one η per network"),
    (lambda: theory.monte_carlo_kernels(experiments.unit_sphere_data(4, 6)[0], samples=0), "samples"),
    (lambda: experiments.linear_loss(torch.eye(3), torch.ones(2), 0.1, 5), "^r0 must have shape"),
    (lambda: experiments.linear_loss(torch.ones(3, 2), torch.ones(3), 0.1, 5), "^K must be square"),
    (lambda: experiments.measured_ratio([1.0, 0.5]), "^loss must be a curve with at least three"),
    (lambda: experiments.Comparison(*experiments.unit_sphere_data(4, 6), steps=5, alphas=[1], etas=[1])(1, 1, 0),
     "width"),
])
def test_bad_input_raises_value_error(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


def test_float64_device_keeps_cuda_and_falls_back_to_the_cpu():
    if torch.cuda.is_available():
        assert experiments.float64_device("cuda").type == "cuda"
    else:                                                        # no CUDA here: refused
        with pytest.raises(ValueError, match="^device is 'cuda' but CUDA is not available"):
            experiments.float64_device("cuda")
    assert experiments.float64_device("mps") == torch.device("cpu")      # MPS has no float64
    assert experiments.float64_device(torch.device("cpu")) == torch.device("cpu")


# --- the fair comparison: κ(Λ∞_α) and every α at its own best step (Proposition 2) ------
def test_limit_condition_matches_the_autograd_kernel_of_a_wide_network():
    """κ(Λ∞_α) from the closed-form kernels against κ(J Jᵀ) of a network of m = 8000 units
    differentiated by autograd (Λ(0) = J_v J_vᵀ + J_g J_gᵀ, no V/G formula involved).
    Tolerance: 4 Monte Carlo standard errors of λ_min and λ_max, each estimated from the
    spread of the m per-unit terms of qᵀΛ(0)q (q the eigenvector). Writing V∞/α for V∞/α²
    misses by 49 % at α = 3.16 and 24 % at α = 100."""
    X, _ = experiments.unit_sphere_data(20, 10, seed=0)                  # the chapter's data
    m, alphas = 8000, [0.3, 10 ** 0.5, 100.0]
    for alpha, kappa_inf in zip(alphas, experiments.limit_condition(X, alphas)):
        Jv, Jg = theory.jacobians(networks.init_wn(10, m, alpha, seed=5), X)
        lam, Q = torch.linalg.eigh(theory.gram(Jv) + theory.gram(Jg))
        rel_se = 0.0
        for j in (0, -1):
            q = Q[:, j]
            terms = m * ((torch.einsum("i,ikd->kd", q, Jv) ** 2).sum(1)
                         + torch.einsum("i,ik->k", q, Jg) ** 2)            # (m,) per unit
            rel_se += float(terms.std() / math.sqrt(m) / lam[j])
        assert float(lam[-1] / lam[0]) == pytest.approx(kappa_inf, rel=4 * rel_se)
        assert 4 * rel_se < 0.1                                          # the test has teeth


def test_best_rate_is_the_rate_of_linearised_gd_at_its_best_step():
    """On a fixed kernel with eigenvalues in [1, κ], GD at η = 2/(1 + κ) shrinks the residual
    by exactly (κ − 1)/(κ + 1) per step (linear_loss, an independent iteration); any other
    step is slower."""
    for kappa in (2.0, 9.5, 90.0):
        K = torch.diag(torch.tensor([1.0, 0.5 * (1 + kappa), kappa], dtype=torch.float64))
        r0 = torch.ones(3, dtype=torch.float64)
        rate = lambda eta: -0.5 * math.log(experiments.linear_loss(K, r0, eta, 200)[-1]  # noqa: E731
                                           / experiments.linear_loss(K, r0, eta, 199)[-1])
        best = experiments.best_rate([kappa])[0]
        assert rate(2 / (1 + kappa)) == pytest.approx(best, rel=1e-9)
        assert rate(1.9 / (1 + kappa)) < best and rate(2.1 / (1 + kappa)) < best
    with pytest.raises(ValueError, match="kappa"):
        experiments.best_rate([1.0])


def test_condition_numbers_and_the_gain_the_chapter_quotes():
    """The chapter's data: κ(Λ∞_1) = κ(H∞) = 9.55 (V∞ + G∞ = H∞), κ → κ(V∞) = 9.31 as α → 0
    and κ(G∞) = 88.9 as α → ∞; the best scale α* = 0.45 with κ = 9.22 (a dense grid agrees),
    a gain of 3.6 % per step over the un-normalised network; α = 100 is 9.3 times slower."""
    X, _ = experiments.unit_sphere_data(20, 10, seed=0)
    H, V, G = networks.limit_kernels(X)
    kappa = lambda K: theory.largest_eigenvalue(K) / theory.least_eigenvalue(K)  # noqa: E731
    k1, k0, kinf, k100, k3 = experiments.limit_condition(X, [1.0, 1e-4, 1e4, 100.0, 10 ** 0.5])
    assert k1 == pytest.approx(kappa(H), rel=1e-10) and k1 == pytest.approx(9.55, abs=0.005)
    assert k0 == pytest.approx(kappa(V), rel=1e-6) and kappa(V) == pytest.approx(9.31, abs=0.005)
    assert kinf == pytest.approx(kappa(G), rel=1e-6) and kappa(G) == pytest.approx(88.9, abs=0.05)
    assert k100 == pytest.approx(88.7, abs=0.05) and k3 == pytest.approx(22.8, abs=0.05)
    a_star, k_star = experiments.best_scale(X)
    dense = np.geomspace(0.3, 0.7, 4001)
    assert k_star == pytest.approx(experiments.limit_condition(X, dense).min(), rel=1e-7)
    assert a_star == pytest.approx(0.45, abs=0.005) and k_star == pytest.approx(9.22, abs=0.005)

    rates = experiments.best_rate([k_star, kappa(H), k100])
    assert rates[0] / rates[1] == pytest.approx(1.036, abs=0.0005)
    assert rates[1] / rates[2] == pytest.approx(9.3, abs=0.05)


def _geometric_sweep(ratios):
    """A RegimeSweep whose runs have loss ratios ``ratios`` (A, E, S) per step (inf: diverged)."""
    ratios = np.asarray(ratios, float)
    t = np.arange(41)
    loss = np.where(np.isinf(ratios)[..., None], np.r_[1.0, 1e3, np.full(39, np.inf)],
                    np.where(np.isinf(ratios), 0.5, ratios)[..., None] ** t)
    A, E, S = ratios.shape
    return experiments.RegimeSweep(np.geomspace(0.1, 10, A), np.geomspace(0.01, 1, E), t, loss,
                                   np.ones_like(loss), loss[0], np.ones((A, S, 3)),
                                   np.ones((S, 3)))


def test_best_rates_pick_each_scales_best_grid_step():
    """−½ log ρ, median over seeds, maximised over η; a diverged run never wins."""
    ratios = np.array([[[0.9, 0.8, 0.7], [0.5, 0.6, 0.4], [np.inf] * 3],
                       [[0.99] * 3, [np.inf, 0.95, 0.95], [0.97] * 3]])
    rs = _geometric_sweep(ratios)
    best, eta = rs.best_rates()
    np.testing.assert_allclose(best, [-0.5 * math.log(0.5), -0.5 * math.log(0.95)], rtol=1e-10)
    np.testing.assert_allclose(eta, rs.etas[[1, 1]])
    assert rs.best_rates(plain=True) == pytest.approx((-0.5 * math.log(0.5), rs.etas[1]))


def test_tuned_runs_use_each_networks_best_step_and_converge_at_its_rate(data):
    """η = 2/(λ_min + λ_max) of Λ(0) (checked on the autograd kernel; of H(0) for the plain
    net), and each measured rate within 15 % of that of GD on the linearised network
    (Λ(0) fixed, the same η and start): the kernel drifts a little at m = 1000. A loss
    stored against the wrong run (the α axis reversed) fails."""
    X, y = data
    sz = experiments.Sizes(n=12, d=6, width=1000, widths=(2,), kernel_widths=(2,),
                           mc_samples=10, steps=100, seeds=2, etas=(0.1,), alphas=(1.0,))
    tr = experiments.tuned_runs(X, y, sz, [0.5, 30.0])
    linear = np.zeros((2, 2))
    for i, a in enumerate(tr.alphas):
        for s in range(2):
            p = networks.init_wn(6, 1000, a, s)
            K = sum(theory.gram(J) for J in theory.jacobians(p, X))
            lam = torch.linalg.eigvalsh(K)
            assert tr.eta[i, s] == pytest.approx(float(2 / (lam[0] + lam[-1])), rel=1e-10)
            curve = experiments.linear_loss(K, networks.forward(p, X) - y, tr.eta[i, s], 100)
            linear[i, s] = -0.5 * math.log(experiments.measured_ratio(curve))
    w = networks.init_wn(6, 1000, 1.0, 1).weights()
    lam = torch.linalg.eigvalsh(theory.plain_ntk(w, X))
    assert tr.plain_eta[1] == pytest.approx(float(2 / (lam[0] + lam[-1])), rel=1e-10)
    np.testing.assert_allclose(tr.rates(), linear, rtol=0.15)
    assert abs(linear[0, 0] / linear[1, 0] - 1) > 0.5                  # the scales differ
