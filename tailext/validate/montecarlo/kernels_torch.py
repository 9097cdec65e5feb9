"""torch backend of :func:`tailext.validate.montecarlo.kernels.replicate_batch` (CPU or CUDA).

Same estimates from the same rewards (tests check agreement to 1e-10), vectorized over the
replications: the tail fit is ``torch.topk`` on each prefix, ψ and the scores are evaluated
on whole prefixes, ``G(τ̂)`` by the same Gauss–Legendre rule. The rewards are still drawn by
numpy, so a run is reproducible from its seed whichever backend computes it.
"""

from __future__ import annotations

import numpy as np

__all__ = ["replicate_batch_torch"]


def replicate_batch_torch(config, rewards: np.ndarray, plan_arrays) -> np.ndarray:
    """``[R, 1 + P, 3, 2]`` as :func:`tailext.validate.montecarlo.kernels.replicate_batch`,
    computed on ``config.device``."""
    import torch

    from tailext import tail_count

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

    out = torch.empty(n_rows, len(plan_arrays[3]), 3, 2, dtype=torch.float64, device=device)
    direct, _, control = crossfit(x, x, [m], [tail_count(m, model.tail_fraction)], [1.0])
    plug_in = (psi(x, h_star, mu_star, s_star)[..., None] * score(x)).mean(dim=1)
    g_star = torch.from_numpy(model.true_gradient).to(device)
    out[:, 0, 0] = direct
    out[:, 0, 1] = direct
    out[:, 0, 2] = direct - control - (plug_in - g_star)
    sizes, counts, weights, bounds = (a.tolist() for a in plan_arrays)
    first, second = x[:, :n], x[:, n:2 * n]
    for p in range(len(bounds) - 1):
        plan = (sizes[bounds[p]:bounds[p + 1]], counts[bounds[p]:bounds[p + 1]],
                weights[bounds[p]:bounds[p + 1]])
        forward, forward_mean, forward_control = crossfit(first, second, *plan)
        backward, backward_mean, backward_control = crossfit(second, first, *plan)
        out[:, 1 + p, 0] = 0.5 * (forward + backward)
        out[:, 1 + p, 1] = 0.5 * (forward_mean + backward_mean)
        out[:, 1 + p, 2] = 0.5 * (forward_mean - forward_control
                                  + backward_mean - backward_control)
    return out.cpu().numpy()
