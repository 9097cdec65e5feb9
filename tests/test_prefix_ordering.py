"""Prefix-TEA's ``ordering`` in the Gaussian-tail model (the Appendix E diagnostic's): the
random order changes nothing for exchangeable rollouts and removes the bias of an order
correlated with the reward. The full measurement is ``benchmarks/prefix_ordering.py``."""

from __future__ import annotations

import warnings

import numpy as np

import tailext
from tailext.validate.montecarlo.model import score

M, REPLICATIONS, SEED = 64, 4096, 20261201
OPTIONS = dict(tail_fraction=0.1, n_target=128, scale_floor=0.2056)  # the diagnostic's


def _paired_difference(rewards):
    """``ĝ_given − ĝ_random`` per replication, ``ĝ = (1/m) Σ A_i S(r_i)``."""
    gradients = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for ordering, extra in (("given", {}), ("random", {"seed": SEED})):
            A = tailext.prefix_tea_advantages(rewards, ordering=ordering, **OPTIONS, **extra)
            gradients.append(np.einsum("rm,rmd->rd", A, score(rewards)) / M)
    return gradients[0] - gradients[1]


def _z(difference):
    """Mean of each component over its standard error ``sd/√R``."""
    return difference.mean(axis=0) / (difference.std(axis=0, ddof=1) / np.sqrt(len(difference)))


def test_random_order_equals_given_in_distribution_for_iid_rollouts():
    """Exchangeable rollouts: the paired mean difference is 0; |z| < 4 for both components
    (a false alarm has probability ≈ 1e-4 under the null, and the seed is fixed)."""
    rewards = np.random.default_rng(SEED).standard_normal((REPLICATIONS, M))
    assert np.all(np.abs(_z(_paired_difference(rewards))) < 4.0)


def test_random_order_removes_the_bias_of_a_length_sorted_order():
    """Rollouts sorted by a length with correlation 0.5 to the reward (as verl's
    ``_balance_batch`` leaves them): ``"given"`` moves the mean gradient by ≈ (+0.16, −0.14)
    (benchmarks/prefix_ordering.py, 65536 replications, SE ≈ 0.005, 0.003), ``"random"``
    does not see the order at all. At R = 4096 the SEs are 4× larger, so the expected
    |z| ≈ (7.3, 12); |z| > 5 for both components (a null difference reaches 5 with
    probability 6e-7)."""
    rng = np.random.default_rng(SEED)
    rewards = rng.standard_normal((REPLICATIONS, M))
    length = 0.5 * rewards + np.sqrt(0.75) * rng.standard_normal(rewards.shape)
    rewards = np.take_along_axis(rewards, np.argsort(length, axis=1), axis=1)
    assert np.all(np.abs(_z(_paired_difference(rewards))) > 5.0)
    ranks = np.argsort(np.argsort(rewards, axis=1), axis=1)  # each rollout's reward rank
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        arrived = tailext.prefix_tea_advantages(rewards, seed=3, **OPTIONS)
        by_reward = tailext.prefix_tea_advantages(np.sort(rewards, axis=1), seed=3, **OPTIONS)
    # "random" is blind to the order: sorting the rollouts first changes nothing
    np.testing.assert_allclose(arrived, np.take_along_axis(by_reward, ranks, axis=1), rtol=0,
                               atol=1e-12)
