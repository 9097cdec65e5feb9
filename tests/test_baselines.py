"""Baseline advantage rules: brute force on small groups, kernels vs references, peers, errors."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, strategies as st

import tailext
from tailext import reference
from tailext._baseline_kernels import max_at_k_weights
from tailext.rules.chow import chow_selection
from tailext.rules import get_rule
from tailext.reference import exact_advantages
from reward_strategies import reward_batches

BASELINES = ["mean_centred", "grpo", "rloo", "bon_max_mean", "bon_max_second", "bon_mean",
             "maxk_loo1", "chow_bon_rl", "cat_bon"]


def magnitude(rewards):
    """Row magnitude ``max |r|`` ``[B, 1]``: rounding errors of ``r − r̄`` scale with it."""
    return np.abs(rewards).max(axis=1, keepdims=True)


def assert_rows_close(actual, expected, row_scale, rtol=1e-12):
    """|actual − expected| ≤ rtol · row_scale per row (row_scale ``[B, 1]``)."""
    bound = rtol * np.maximum(row_scale, np.abs(expected).max(axis=1, keepdims=True))
    assert np.all(np.abs(actual - expected) <= bound), np.abs(actual - expected).max()


# --- brute force on small groups ----------------------------------------------------------

def brute_transformed(row, k):
    """r̃_i = mean over the k-subsets containing i of their maximum (enumerated)."""
    m = len(row)
    out = np.empty(m)
    for i in range(m):
        maxima = [max(row[list(s)]) for s in itertools.combinations(range(m), k) if i in s]
        out[i] = np.mean(maxima)
    return out


def brute_rho(values, k):
    """Mean over all k-subsets of the maximum: the unbiased max@k estimate."""
    return np.mean([max(s) for s in itertools.combinations(values, k)])


def zscore(values, eps, ddof):
    sd = np.std(values, ddof=ddof)
    return (values - values.mean()) / (sd + eps) if sd + eps > 0 else np.zeros_like(values)


@given(rewards=reward_batches(max_m=7), data=st.data())
def test_max_at_k_rules_match_subset_enumeration(rewards, data):
    m = rewards.shape[1]
    k = data.draw(st.integers(2, m))
    shifted = rewards - rewards.max(axis=1, keepdims=True)  # both rules are shift-invariant
    for b, row in enumerate(shifted):
        transformed = brute_transformed(row, k)
        expected = zscore(transformed, 1e-6, 0)
        gain = magnitude(rewards)[b, 0] / (np.std(transformed) + 1e-6)
        assert_rows_close(tailext.bon_mean(rewards[b], k=k)[None], expected[None],
                          np.array([[gain]]), rtol=1e-9)
        s = np.array([np.sum([max(row[list(c)]) for c in itertools.combinations(range(m), k)
                              if i in c]) / math.comb(m, k) for i in range(m)])
        loo = np.array([brute_rho(np.delete(row, i), k - 1) for i in range(m)])
        assert_rows_close(tailext.maxk_loo1(rewards[b], k=k)[None], (s - k / m * loo)[None],
                          magnitude(rewards)[b:b + 1], rtol=1e-9)


@given(rewards=reward_batches())
def test_mean_rules_match_their_formulas(rewards):
    m = rewards.shape[1]
    scale = magnitude(rewards)
    others = np.array([[np.delete(row, i).mean() for i in range(m)] for row in rewards])
    assert_rows_close(tailext.rloo(rewards), rewards - others, scale, rtol=1e-9)
    assert_rows_close(tailext.mean_centred(rewards), rewards - rewards.mean(axis=1, keepdims=True),
                      scale, rtol=1e-9)
    for eps, ddof in [(1e-6, 0), (1e-4, 1), (0.0, 0)]:
        expected = np.array([zscore(row, eps, ddof) for row in rewards])
        gain = scale / (rewards.std(axis=1, ddof=ddof, keepdims=True) + eps + 1e-300)
        assert_rows_close(tailext.grpo(rewards, eps=eps, ddof=ddof), expected, gain, 1e-9)


@given(rewards=reward_batches())
def test_bon_max_rules_match_their_formulas(rewards):
    for row, mean_rule, second_rule, passk in zip(
            rewards, tailext.bon_max_mean(rewards), tailext.bon_max_second(rewards),
            tailext.bon_max_second(rewards, normalize=True)):
        best = int(np.argmax(row))  # first index of the maximum
        ordered = sorted(row)
        expected = np.zeros_like(row)
        expected[best] = row[best] - row.mean()
        assert_rows_close(mean_rule[None], expected[None], magnitude(row[None]), 1e-9)
        expected[best] = ordered[-1] - ordered[-2]
        assert np.array_equal(second_rule, expected)
        sd = np.std(row, ddof=1)
        assert_rows_close(passk[None], expected[None] / (sd + 1e-6),
                          magnitude(row[None]) / (sd + 1e-6), 1e-12)


def brute_chow(row, selected):
    m = len(row)
    sel = [i for i in range(m) if selected[i]]
    cor = [i for i in range(m) if not selected[i]]
    star = max(sel, key=lambda i: (row[i], -i))  # first index of the maximum within Sel
    gain = m * (row[star] - row.mean())
    f_hat = max(sum(row[j] <= row[star] for j in cor), 1) / len(cor)
    out = np.zeros(m)
    out[star] = gain
    for j in cor:
        if row[j] <= row[star]:
            out[j] = gain * (len(sel) - 1) / (f_hat * len(cor))
    return out


@given(rewards=reward_batches(min_m=2), seed=st.integers(0, 2**32 - 1), data=st.data())
def test_chow_bon_rl_matches_formula_and_is_reproducible(rewards, seed, data):
    m = rewards.shape[1]
    n_select = data.draw(st.integers(1, m - 1))
    got = tailext.chow_bon_rl(rewards, n_select=n_select, seed=seed)
    assert np.array_equal(got, tailext.advantages(rewards, method="chow_bon_rl",
                                                  n_select=n_select, seed=seed))
    selected = chow_selection(rewards.shape, n_select=n_select, seed=seed)
    assert np.all(selected.sum(axis=1) == n_select)
    expected = np.array([brute_chow(row, sel) for row, sel in zip(rewards, selected)])
    assert_rows_close(got, expected, m * m * magnitude(rewards), 1e-9)
    assert_rows_close(got, reference.chow_bon_rl(rewards, selected),
                      m * m * magnitude(rewards))  # kernel == reference


def test_chow_bon_rl_generator_draws_new_splits():
    r = np.arange(16.0)
    rng = np.random.default_rng(5)
    first, second = (tailext.chow_bon_rl(r, seed=rng) for _ in range(2))
    assert not np.array_equal(first, second)
    np.testing.assert_array_equal(first, tailext.chow_bon_rl(r, seed=5))


@given(rewards=reward_batches(), n_target=st.integers(1, 8))
def test_cat_bon_matches_formula(rewards, n_target):
    m = rewards.shape[1]
    expected = []
    for row in rewards:
        q = np.array([(np.sum(row < v) + 1) / (m + 1) for v in row])
        w = n_target * q ** (n_target - 1)
        sd = np.std(row, ddof=1)
        expected.append(w / w.mean() * (row - row.mean()) / (sd + 1e-4))
    gain = m * magnitude(rewards) / (rewards.std(axis=1, ddof=1, keepdims=True) + 1e-4)
    assert_rows_close(tailext.cat_bon(rewards, n_target=n_target), np.array(expected), gain,
                      1e-9)


# --- kernels vs references ----------------------------------------------------------------

def _draw_options(method, m, data):
    """Options of ``method`` drawn for a group of ``m`` (an integer seed for Chow)."""
    draws = {
        "grpo": lambda: {"eps": data.draw(st.sampled_from([1e-6, 0.0, 1e-4, 0.5])),
                         "ddof": data.draw(st.sampled_from([0, 1]))},
        "bon_max_second": lambda: {"normalize": data.draw(st.booleans()),
                                   "eps": data.draw(st.sampled_from([1e-6, 0.0]))},
        "bon_mean": lambda: {"k": data.draw(st.integers(2, m)),
                             "eps": data.draw(st.sampled_from([1e-6, 0.0]))},
        "maxk_loo1": lambda: {"k": data.draw(st.integers(2, m))},
        "chow_bon_rl": lambda: {"n_select": data.draw(st.integers(1, m - 1)),
                                "seed": data.draw(st.integers(0, 2**32 - 1))},
        "cat_bon": lambda: {"n_target": data.draw(st.sampled_from([1, 2, 16, 128, 10**4])),
                            "eps": data.draw(st.sampled_from([1e-4, 0.0]))},
    }
    return draws.get(method, dict)()


@pytest.mark.parametrize("method", BASELINES)
@given(rewards=reward_batches(max_m=40), data=st.data())
def test_kernels_match_references(method, rewards, data):
    """Every kernel equals its reference, evaluated in each row's frame
    (:func:`tailext.reference.exact_advantages`), to 1e-12 of the row's largest advantage or
    of the size of its terms (``m`` × the spread, or ``m`` for a scale-invariant rule),
    whichever is larger: an advantage that is a difference of equal terms (``r* − r̄`` with
    ``r* = r̄``) is a rounding residue in either implementation."""
    from tailext.reference import scale_power

    options = _draw_options(method, rewards.shape[1], data)
    complete = {**get_rule(method).options, **options}
    got = tailext.advantages(rewards, method=method, **options)
    want = exact_advantages(rewards, method, complete)
    m = rewards.shape[1]
    terms = m * (np.ptp(rewards, axis=1, keepdims=True) if scale_power(method, complete)
                 else np.ones((len(rewards), 1)))
    assert_rows_close(got, want, np.where(np.ptp(rewards, axis=1, keepdims=True) > 0, terms, 0))


@pytest.mark.parametrize("m,k", [(4096, 2048), (4096, 2), (4096, 4096), (1000, 999)])
def test_max_at_k_weights_are_exact_to_rounding_for_large_groups(m, k):
    weights = max_at_k_weights(m, k)
    total = math.comb(m - 1, k - 1)
    for i in [1, k - 1, k, k + 1, (k + m) // 2, m - 1, m]:
        if not 1 <= i <= m:
            continue
        exact_own = math.comb(i - 1, k - 1) / total
        exact_above = math.comb(i - 2, k - 2) / total if i >= 2 else 0.0
        for got, exact in [(weights.own[i - 1], exact_own), (weights.above[i - 1],
                                                               exact_above)]:
            if exact > 1e-290:  # product-form error ≲ m ulps
                assert abs(got - exact) <= 1e-12 * exact
            else:
                assert got <= 1e-290
    assert np.all(np.isfinite(weights.own)) and np.all(weights.own >= 0)


def test_bon_mean_is_stable_for_m4096_k2048():
    rewards = np.random.default_rng(0).normal(size=(1, 4096))
    got = tailext.bon_mean(rewards, k=2048)
    assert np.all(np.isfinite(got))
    transformed = reference.max_at_k_transformed(rewards, 2048)
    gain = magnitude(rewards) / (transformed.std() + 1e-6)
    assert_rows_close(got, reference.bon_mean(rewards, 2048), gain)


# --- degenerate groups, properties, registry ----------------------------------------------

@pytest.mark.parametrize("method", BASELINES)
@pytest.mark.parametrize("value", [0.1, -3.7e8, 1e-9])
def test_all_equal_groups_give_exact_zeros(method, value):
    rewards = np.full((3, 7), value)
    options = {"seed": 0} if method == "chow_bon_rl" else {}
    assert np.array_equal(tailext.advantages(rewards, method=method, **options),
                          np.zeros((3, 7)))


@pytest.mark.parametrize("method", BASELINES)
def test_two_valued_and_minimal_groups_are_finite(method):
    options = {"seed": 0} if method == "chow_bon_rl" else {}
    if method in ("bon_mean", "maxk_loo1"):
        options["k"] = 2
    for rewards in ([0.0, 1.0], [1e300, -1e300], [5.0, 5.0, 5.0 + 1e-12, 5.0]):
        assert np.all(np.isfinite(tailext.advantages(rewards, method=method, **options)))


def _options(method):
    return {"seed": 7} if method == "chow_bon_rl" else {}


def _check_property(method, prop, rewards):
    rule = get_rule(method)
    options = _options(method)
    A = rule(rewards, **options)
    size = np.abs(A).max() + magnitude(rewards).max() * rewards.shape[1] ** 2
    tol = 1e-9 * size
    if prop == "zero_sum":
        assert np.all(np.abs(A.sum(axis=1)) <= tol)
    elif prop == "shift_invariant":
        assert np.allclose(rule(rewards + 3.25, **options), A, atol=tol, rtol=0)
    elif prop == "scale_equivariant":
        assert np.allclose(rule(rewards * 2.5, **options), 2.5 * A, atol=2.5 * tol, rtol=0)
    elif prop == "permutation_equivariant":
        perm = np.random.default_rng(1).permutation(rewards.shape[1])
        assert np.allclose(rule(rewards[:, perm], **options), A[:, perm], atol=tol, rtol=0)
    elif prop == "monotone":
        order = np.argsort(rewards, axis=1, kind="stable")
        assert np.all(np.diff(np.take_along_axis(A, order, axis=1), axis=1) >= -tol)
    elif prop == "deterministic":
        assert np.array_equal(rule(rewards, **options), A)


@pytest.mark.parametrize("method", BASELINES)
def test_claimed_properties_hold(method):
    rng = np.random.default_rng(3)
    batches = [rng.normal(size=(20, 12)), rng.integers(0, 4, size=(20, 12)).astype(float)]
    rule = get_rule(method)
    assert rule.formula
    for prop in rule.properties:
        for rewards in batches:
            _check_property(method, prop, rewards)


def test_every_baseline_is_registered_with_its_options():
    assert set(BASELINES) <= set(tailext.available_methods())
    assert get_rule("bon_mean").options == {"k": 4, "eps": 1e-6}
    assert get_rule("chow_bon_rl").options == {"n_select": None, "seed": None}
    assert get_rule("cat_bon").options == {"n_target": 128, "eps": 1e-4}
    assert get_rule("grpo").options == {"eps": 1e-6, "ddof": 1}


@pytest.mark.parametrize("method", BASELINES)
def test_inputs_are_not_modified_and_shapes_kept(method):
    rewards = np.random.default_rng(2).normal(size=(4, 10))
    copy = rewards.copy()
    A = tailext.advantages(rewards, method=method, **_options(method))
    np.testing.assert_array_equal(rewards, copy)
    assert A.shape == (4, 10) and A.dtype == np.float64
    one = tailext.advantages(rewards[1], method=method, **_options(method))
    assert one.shape == (10,)
    if method != "chow_bon_rl":  # the random split of one row differs from row 1 of four
        np.testing.assert_allclose(one, A[1], rtol=0, atol=1e-12)


# --- peers --------------------------------------------------------------------------------

@given(rewards=reward_batches(min_m=2))
def test_trl_and_verl_group_normalization_conventions(rewards):
    """TRL ``scale_rewards="group"``: (r − mean)/(sample std + 1e-4); verl ``grpo``: the same
    with ε = 1e-6; verl ``grpo_passk``: (r_max − r_second)/(sample std + ε) at the top.
    (The comparison with the installed packages is in the integration tests.)"""
    sample_sd = rewards.std(axis=1, ddof=1, keepdims=True)
    centred = rewards - rewards.mean(axis=1, keepdims=True)
    for eps, name in [(1e-4, "trl"), (1e-6, "verl")]:
        gain = magnitude(rewards) / (sample_sd + eps)
        assert_rows_close(tailext.advantages(rewards, method="grpo", eps=eps),
                          centred / (sample_sd + eps), gain, 1e-9)
    top = np.sort(rewards, axis=1)
    passk = np.zeros_like(rewards)
    np.put_along_axis(passk, rewards.argmax(axis=1)[:, None],
                      (top[:, -1:] - top[:, -2:-1]) / (sample_sd + 1e-6), axis=1)
    assert_rows_close(tailext.advantages(rewards, method="bon_max_second", normalize=True),
                      passk, magnitude(rewards) / (sample_sd + 1e-6), 1e-12)


# --- errors -------------------------------------------------------------------------------

@pytest.mark.parametrize("method,options,error,match", [
    ("bon_mean", {"k": 1}, ValueError, r"`k` must be an integer >= 2, got 1\."),
    ("bon_mean", {"k": 9}, ValueError,
     r"the group has 8 valid rollout\(s\), too few for method 'bon_mean' \(k=9\), "
     r"which needs at least 9; use larger groups, or small_groups='zero'"),
    ("maxk_loo1", {"k": 2.5}, TypeError, r"`k` must be an integer, got 2\.5\."),
    ("maxk_loo1", {"k": 0}, ValueError, r"`k` must be an integer >= 2, got 0\."),
    ("bon_mean", {"eps": -1.0}, ValueError, r"`eps` must be a finite number >= 0\.0, got -1\.0\."),
    ("grpo", {"eps": float("nan")}, ValueError, r"`eps` must be a finite number >= 0\.0, got nan"),
    ("grpo", {"eps": "small"}, TypeError, r"`eps` must be a real number, got 'small'\."),
    ("grpo", {"eps": True}, TypeError, r"`eps` must be a real number, got True\."),
    ("grpo", {"ddof": 2}, ValueError, r"`ddof` must be one of 0, 1, got 2\."),
    ("grpo", {"ddof": True}, TypeError, r"`ddof` must be one of 0, 1, got True\."),
    ("bon_max_second", {"normalize": 1}, TypeError, r"`normalize` must be True or False, got 1"),
    ("chow_bon_rl", {"n_select": 8}, ValueError, r"8 valid rollout\(s\).*needs at least 9"),
    ("chow_bon_rl", {"n_select": 0}, ValueError, r"`n_select` must be an integer >= 1, got 0"),
    ("cat_bon", {"n_target": 0}, ValueError,
     r"`n_target` must be an integer in \[1, 10000000\], got 0\."),
    ("grpo", {"k": 2}, TypeError, r"unknown option\(s\) 'k'; accepted options: ddof, eps\.$"),
    ("grpo", {"epsilon": 2}, TypeError, r"unknown option\(s\) 'epsilon'.* Did you mean 'eps'\?"),
])
def test_bad_options_raise_clear_errors(method, options, error, match):
    with pytest.raises(error, match=match):
        tailext.advantages(np.arange(8.0), method=method, **options)


@pytest.mark.parametrize("method", ["rloo", "bon_max_second", "bon_mean", "maxk_loo1",
                                    "chow_bon_rl", "cat_bon"])
def test_groups_of_one_are_rejected(method):
    with pytest.raises(ValueError, match=r"group 0 of `rewards` has 1 valid rollout\(s\), too "
                                         r"few for method .*which needs at least [24]"):
        tailext.advantages(np.ones((3, 1)), method=method)


def test_sample_std_needs_two_rollouts():
    with pytest.raises(ValueError, match=r"the group has 1 valid rollout\(s\).*at least 2"):
        tailext.grpo([1.0])
    np.testing.assert_array_equal(tailext.grpo([1.0], ddof=0), [0.0])


@pytest.mark.parametrize("method", BASELINES)
def test_non_finite_rewards_name_the_row(method):
    rewards = np.zeros((3, 8))
    rewards[2, 5] = np.nan
    with pytest.raises(ValueError, match=r"non-finite reward nan in row 2 of `rewards`"):
        tailext.advantages(rewards, method=method)
