"""torch backend of :func:`tailext.validate.montecarlo.kernels.replicate_batch` (CPU or CUDA).

Same estimates from the same rewards (tests check agreement to 1e-10), vectorized over the
replications: the tail fit is ``torch.topk`` on each prefix, ψ and the scores are evaluated
on whole prefixes, ``G(τ̂)`` by the same Gauss–Legendre rule. The rewards are still drawn by
numpy, so a run is reproducible from its seed whichever backend computes it.
"""

from __future__ import annotations

import numpy as np

__all__ = ["replicate_batch_torch"]


def fit_features_torch(top, n: int, h_star: float, tail_fraction: float, density: float):
    """The control features of :func:`tailext.validate.montecarlo.controls.fit_features` for
    fits whose ``k`` largest rewards are the rows of ``top`` (``[R, k]``, descending) →
    ``[R, N_FEATURES]``."""
    import math

    import torch

    from .controls import CHAOS_TABLES, LAYOUT, N_THRESHOLD

    (_, first_powers), (_, second_powers), higher = LAYOUT
    h = top[:, -1:]
    above = top[:, :-1]
    big_k = above.shape[1]
    lam = torch.exp(-0.5 * h * h) / math.sqrt(2.0 * math.pi) / (0.5 * torch.erfc(h / math.sqrt(2.0)))
    m1, m2 = lam, 1.0 + h * lam
    m3, m4 = 2.0 * m1 + h * h * lam, 3.0 * m2 + h ** 3 * lam
    c2 = m2 - m1 * m1
    c3 = m3 - 3.0 * m1 * m2 + 2.0 * m1 ** 3
    c4 = m4 - 4.0 * m1 * m3 + 6.0 * m1 * m1 * m2 - 3.0 * m1 ** 4
    u = (above - m1) / torch.sqrt(c2)
    g2 = u * u - 1.0
    power = torch.stack([(u ** a * g2 ** b).sum(dim=1) if a + b <= 4
                         else torch.zeros_like(h[:, 0]) for a in range(5) for b in range(5)],
                        dim=1)
    root = math.sqrt(big_k)
    first = [power[:, 5] / root, power[:, 1] / root,
             (u ** 3 - c3 / c2 ** 1.5).sum(dim=1) / root,
             (u ** 4 - c4 / c2 ** 2).sum(dim=1) / root]
    second = [(power[:, 5] ** 2 - power[:, 10]) / big_k,
              (power[:, 5] * power[:, 1] - power[:, 6]) / big_k,
              (power[:, 1] ** 2 - power[:, 2]) / big_k]
    higher_values = []
    for (coefficients, blocks), norm in zip(CHAOS_TABLES, (big_k * root, big_k * big_k)):
        for c in range(coefficients.shape[0]):
            total = torch.zeros_like(h[:, 0])
            for p in range(coefficients.shape[1]):
                term = torch.full_like(total, float(coefficients[c, p]))
                for index in blocks[c, p]:
                    if index >= 0:
                        term = term * power[:, int(index)]
                total = total + term
            higher_values.append(total / norm)
    z = (h[:, 0] - h_star) * density / math.sqrt(tail_fraction * (1.0 - tail_fraction) / n)
    columns = [z ** a for a in range(1, N_THRESHOLD + 1)]
    columns += [z ** a * value for value in first for a in range(first_powers)]
    columns += [z ** a * value for value in second for a in range(second_powers)]
    columns += [z ** a * value for value in higher_values for a in range(higher)]
    return torch.stack(columns, dim=1)


def replicate_batch_torch(config, rewards: np.ndarray, plan_arrays):
    """``([R, 1 + P, 3, 2], [R, S, F])`` as
    :func:`tailext.validate.montecarlo.kernels.replicate_batch`, computed on
    ``config.device``."""
    import torch

    from tailext import tail_count

    from .controls import N_FEATURES
    from .model import QUADRATURE_WIDTH, SCORE_OFFSET

    model = config.model
    device = torch.device(config.device)
    x = torch.from_numpy(rewards).to(device=device, dtype=torch.float64)
    n_rows, m = x.shape
    n = m // 2
    inv_beta = 1.0 / model.tail_fraction
    nodes = torch.from_numpy(model.nodes).to(device)
    quad_weights = torch.from_numpy(model.weights).to(device)
    half_width = 0.5 * QUADRATURE_WIDTH

    def fit(values, k):
        top = torch.topk(values, k, dim=1).values
        fits.append(top)
        h = top[:, -1]
        mu = top.mean(dim=1)
        s = torch.sqrt(((top - mu[:, None]) ** 2).mean(dim=1)).clamp_min(model.scale_floor)
        return h[:, None], mu[:, None], s[:, None]

    def psi(r, h, mu, s):
        value = (r - h) * (1.0 + model.kappa / (2.0 * s) * (r + h - 2.0 * mu)) * inv_beta
        return torch.where((r >= h) & (s > 0), value, torch.zeros_like(value))

    def score(r):
        return torch.stack([torch.tanh(r), 1.0 / (1.0 + r * r) - SCORE_OFFSET], dim=-1)

    def tail_gradient(h, mu, s):
        r = h + half_width * (1.0 + nodes)  # [R, Q]
        density = torch.exp(-0.5 * r * r) / np.sqrt(2.0 * np.pi)
        integrand = (psi(r, h, mu, s) * quad_weights * density)[..., None] * score(r)
        return half_width * integrand.sum(dim=1)

    h_star, mu_star, s_star = model.tail_vector.tolist()
    jacobian = torch.from_numpy(model.jacobian).to(device)

    def influence_mean(values):
        """Mean influence function of ``(h, μ_t, s)`` at ``τ*`` over each row → ``[R, 3]``."""
        above = values >= h_star
        i_h = (above.double().mean(dim=1) - model.tail_fraction) / model.threshold_density
        i_mu = h_star + torch.where(above, values - h_star, 0.0).mean(dim=1) * inv_beta - mu_star
        spread = torch.where(above, (values - mu_star) ** 2 - (h_star - mu_star) ** 2, 0.0)
        i_s = ((spread.mean(dim=1) * inv_beta - s_star ** 2 + (h_star - mu_star) ** 2)
               / (2.0 * s_star))
        return torch.stack([i_h, i_mu, i_s], dim=1)

    def crossfit(fit_values, eval_values, sizes, counts, weights):
        """Estimate, Σ_j w_j G(τ̂_j) and Σ_j w_j J_G · mean IF(fit[:n_j]) → 3 × [R, 2]."""
        estimate = torch.zeros(n_rows, 2, dtype=torch.float64, device=device)
        expectation = torch.zeros_like(estimate)
        control = torch.zeros_like(estimate)
        for n_j, k_j, w_j in zip(sizes, counts, weights):
            h, mu, s = fit(fit_values[:, :n_j], int(k_j))
            r = eval_values[:, :n_j]
            estimate += w_j / n_j * (psi(r, h, mu, s)[..., None] * score(r)).sum(dim=1)
            expectation += w_j * tail_gradient(h, mu, s)
            control += w_j * influence_mean(fit_values[:, :n_j]) @ jacobian.T
        return estimate, expectation, control

    fits = []
    out = torch.empty(n_rows, len(plan_arrays[3]), 3, 2, dtype=torch.float64, device=device)
    direct, _, control = crossfit(x, x, [m], [tail_count(m, model.tail_fraction)], [1.0])
    plug_in = (psi(x, h_star, mu_star, s_star)[..., None] * score(x)).mean(dim=1)
    g_star = torch.from_numpy(model.true_gradient).to(device)
    out[:, 0, 0] = direct
    out[:, 0, 1] = direct
    out[:, 0, 2] = direct - control - (plug_in - g_star)
    sizes, counts, weights, bounds = (a.tolist() for a in plan_arrays)
    first, second = x[:, :n], x[:, n:2 * n]
    width = N_FEATURES if config.controls else 0
    features = torch.zeros(n_rows, len(sizes), width, dtype=torch.float64, device=device)
    for p in range(len(bounds) - 1):
        plan = (sizes[bounds[p]:bounds[p + 1]], counts[bounds[p]:bounds[p + 1]],
                weights[bounds[p]:bounds[p + 1]])
        fits.clear()
        forward, forward_mean, forward_control = crossfit(first, second, *plan)
        backward, backward_mean, backward_control = crossfit(second, first, *plan)
        if width:
            for j, size in enumerate(plan[0]):
                for top in (fits[j], fits[len(plan[0]) + j]):
                    features[:, bounds[p] + j] += fit_features_torch(
                        top, size, h_star, model.tail_fraction, model.threshold_density)
        out[:, 1 + p, 0] = 0.5 * (forward + backward)
        out[:, 1 + p, 1] = 0.5 * (forward_mean + backward_mean)
        out[:, 1 + p, 2] = 0.5 * (forward_mean - forward_control
                                  + backward_mean - backward_control)
    return out.cpu().numpy(), features.cpu().numpy()
