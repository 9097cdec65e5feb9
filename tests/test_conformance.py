"""tailext.testing.check_rule: every registered rule keeps its claims; broken rules are caught."""

import numba
import numpy as np
import pytest
from hypothesis import settings

import tailext
from tailext.rules import PROPERTIES
from tailext.testing import ALWAYS_CHECKED, CHECKABLE, check_rule
from tailext.testing.strategies import reward_batches

# Examples per property: a quarter of the active hypothesis profile (15 by default, 250 with
# HYPOTHESIS_PROFILE=thorough); each property of each rule is its own hypothesis run.
EXAMPLES = max(5, settings().max_examples // 4)


@pytest.fixture
def serial_numba():
    """Run numba kernels on one thread for the many tiny calls of a conformance run.

    With the OpenMP threading layer on an oversubscribed machine a parallel call on a
    [4, 48] batch was measured at ~28 ms against ~0.3 ms on one thread; the properties
    checked here do not depend on the thread count (``test_parallel_kernels_conform``
    keeps the default threads).
    """
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    yield
    numba.set_num_threads(threads)


@pytest.mark.parametrize("method", tailext.available_methods())
def test_registered_rule_keeps_its_claimed_properties(method, serial_numba):
    rule = tailext.get_rule(method)
    report = check_rule(method, max_examples=EXAMPLES)
    checked = set(report.results)
    assert set(rule.properties) | set(ALWAYS_CHECKED) <= checked
    # a property the rule does not claim is not asserted (batch_independent rides on
    # deterministic, for rules without a seed: a random rule's rows share one stream)
    implied = {"batch_independent"} if ("deterministic" in rule.properties
                                        and "seed" not in rule.options) else set()
    assert checked == set(rule.properties) | set(ALWAYS_CHECKED) | implied
    assert report.ok, str(report)


def test_parallel_kernels_conform():
    report = check_rule("tea", properties=["deterministic", "permutation_equivariant"],
                        max_examples=5)
    assert report.ok, str(report)


def test_unclaimed_properties_of_builtin_rules_are_detected_as_failing(serial_numba):
    # docs/math.md#prefix-tea-advantage: Prefix-TEA in the given order weights early
    # rollouts more (not
    # permutation-equivariant; ordering="random", the default, is) and its negative
    # jackknife weights break monotonicity; raw TEA advantages are not centred.
    prefix = check_rule("prefix_tea", properties=["permutation_equivariant", "monotone"],
                        options={"ordering": "given"}, max_examples=EXAMPLES)
    assert prefix["permutation_equivariant"].holds is False
    assert prefix["monotone"].holds is False
    raw = check_rule("tea_raw", properties=["zero_sum"], max_examples=EXAMPLES)
    assert raw["zero_sum"].holds is False
    assert raw["zero_sum"].example["rewards"].ndim == 2


# --- deliberately broken rules: each violates one property -----------------------------------

def centred(rewards):
    r = np.asarray(rewards, dtype=np.float64)
    return r - r.mean(axis=-1, keepdims=True)


def mutates_input(rewards):
    r = np.asarray(rewards)
    r -= r.mean(axis=-1, keepdims=True)  # in place when the caller passes float64
    return np.array(r, dtype=np.float64)


def leaks_across_rows(rewards):
    r = np.asarray(rewards, dtype=np.float64)
    return r - r.mean()  # the batch mean instead of each group's mean


def not_zero_sum(rewards):
    r = np.asarray(rewards, dtype=np.float64)
    return r - r.min(axis=-1, keepdims=True)


def first_rollout_baseline(rewards):
    r = np.asarray(rewards, dtype=np.float64)
    return r - r[..., :1]  # shift-invariant, but rollout 0 is special


def z_score_without_epsilon(rewards):
    r = np.asarray(rewards, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return centred(r) / r.std(axis=-1, keepdims=True)


def unseeded_noise(rewards):
    return centred(rewards) + 1e-3 * np.random.default_rng().standard_normal(np.shape(rewards))


def reversed_order(rewards):
    return -centred(rewards)


def float32_output(rewards):
    return centred(rewards).astype(np.float32)


def rewards_unchanged_by(rule, example):
    rewards = np.array(example["rewards"])
    rule(rewards)
    return np.array_equal(rewards, example["rewards"])


@pytest.mark.parametrize("rule, prop, reproduce", [
    (mutates_input, "no_input_mutation",
     lambda ex: not rewards_unchanged_by(mutates_input, ex)),
    (leaks_across_rows, "batch_independent",
     lambda ex: not np.allclose(leaks_across_rows(ex["rewards"][ex["row"]:ex["row"] + 1]),
                                leaks_across_rows(ex["rewards"])[ex["row"]])),
    (not_zero_sum, "zero_sum", lambda ex: not_zero_sum(ex["rewards"]).sum() != 0),
    (first_rollout_baseline, "permutation_equivariant",
     lambda ex: not np.allclose(first_rollout_baseline(ex["rewards"][:, ex["permutation"]]),
                                first_rollout_baseline(ex["rewards"])[:, ex["permutation"]])),
    (z_score_without_epsilon, "finite",
     lambda ex: not np.isfinite(z_score_without_epsilon(ex["rewards"])).all()),
    (unseeded_noise, "deterministic", lambda ex: True),
    (reversed_order, "monotone", lambda ex: np.ptp(ex["rewards"]) > 0),
    (float32_output, "shape_dtype", lambda ex: float32_output(ex["rewards"]).dtype != np.float64),
])
def test_broken_rule_fails_its_check_with_a_minimal_example(rule, prop, reproduce):
    report = check_rule(rule, properties=[prop], max_examples=EXAMPLES)
    result = report[prop]
    assert result.holds is False and not report.ok and prop in report.failures
    example = result.example
    rewards = example["rewards"]
    # shrunk: as few rows as the violation needs (two to leak across rows) and a tiny group
    assert rewards.shape[0] == (2 if prop == "batch_independent" else 1)
    assert rewards.shape[1] <= 3
    assert reproduce(example), str(report)
    assert "minimal example" in str(report) and prop in str(report)
    with pytest.raises(AssertionError, match=f"{prop} +FAILS"):
        report.raise_on_failure()


def test_minimal_examples_of_simple_violations():
    # hypothesis shrinks to readable integer rewards when the violation allows it
    report = check_rule(not_zero_sum, properties=["zero_sum"], max_examples=EXAMPLES)
    assert report["zero_sum"].example["rewards"].tolist() == [[2.0, 1.0]]
    report = check_rule(z_score_without_epsilon, properties=["finite"], max_examples=EXAMPLES)
    assert report["finite"].example["rewards"].tolist() == [[0.0, 0.0]]


def test_correct_custom_rule_passes_every_applicable_property():
    report = check_rule(centred, properties=["zero_sum", "shift_invariant", "scale_equivariant",
                                             "permutation_equivariant", "monotone",
                                             "deterministic"], max_examples=EXAMPLES)
    assert report.ok, str(report)
    assert set(report.results) == set(CHECKABLE) - {"scale_invariant"}
    assert check_rule(centred, properties=["scale_invariant"],
                      max_examples=EXAMPLES)["scale_invariant"].holds is False


def test_scale_check_distinguishes_equivariance_from_invariance():
    def z_scored(rewards):
        r = np.asarray(rewards, dtype=np.float64)
        sd = r.std(axis=-1, keepdims=True)
        # not `where=sd > 0`: the sd of an all-equal group is rounding noise, not 0, and
        # noise / noise is O(1) (check_rule found this on [1e-8, 1e-8, 1e-8])
        varies = np.ptp(r, axis=-1, keepdims=True) > 0
        return np.divide(centred(r), sd, out=np.zeros_like(r), where=varies)

    report = check_rule(z_scored, properties=["scale_invariant", "scale_equivariant"],
                        max_examples=EXAMPLES)
    assert report["scale_invariant"].holds is True
    assert report["scale_equivariant"].holds is False


def test_a_rule_with_a_seed_option_is_compared_under_seed_zero():
    def random_baseline(rewards, *, seed=None):
        r = np.asarray(rewards, dtype=np.float64)
        index = np.random.default_rng(seed).integers(r.shape[-1])
        return r - r[..., index:index + 1]

    report = check_rule(random_baseline, properties=["deterministic", "shift_invariant"],
                        max_examples=EXAMPLES)
    assert report.ok, str(report)
    assert "batch_independent" not in report.results  # rows share the seeded stream


def test_rejected_inputs_are_counted_and_an_all_rejecting_rule_is_unchecked():
    def needs_eight(rewards):
        r = np.asarray(rewards, dtype=np.float64)
        if r.shape[-1] < 8:
            raise ValueError("groups need at least 8 rollouts")
        return centred(r)

    report = check_rule(needs_eight, properties=[], max_examples=EXAMPLES)
    assert report.ok and report["finite"].rejected > 0
    assert report["finite"].rejection == "ValueError: groups need at least 8 rollouts"

    def rejects_everything(rewards):
        raise ValueError("never")

    report = check_rule(rejects_everything, properties=[], max_examples=5)
    assert not report.ok
    assert all(r.holds is None and "rejected all" in r.message for r in report.results.values())


def test_atol_admits_fixed_size_rounding_noise_of_a_unitless_rule():
    def centred_softmax(rewards):
        r = np.asarray(rewards, dtype=np.float64)
        w = np.exp(r - r.max(axis=-1, keepdims=True))
        w /= w.sum(axis=-1, keepdims=True)
        return w - w.mean(axis=-1, keepdims=True)

    # an all-equal group of zeros gets w = 1/m and A = 1/m - mean(1/m, ...): rounding noise
    # of size ~1e-17 whatever the rewards' magnitude, so only an absolute floor admits it
    strategy = reward_batches(kinds=("constant",), offsets=(0.0,), large_sizes=())
    strict = check_rule(centred_softmax, properties=["zero_sum"], rewards=strategy,
                        max_examples=EXAMPLES)
    assert strict["zero_sum"].holds is False
    assert check_rule(centred_softmax, properties=["zero_sum"], rewards=strategy, atol=1e-15,
                      max_examples=EXAMPLES).ok


def test_other_exceptions_are_violations():
    def crashes(rewards):
        raise ZeroDivisionError("oops")

    report = check_rule(crashes, properties=[], max_examples=5)
    assert report["finite"].holds is False
    assert report["finite"].message == "raised ZeroDivisionError: oops"


def test_custom_reward_strategy_and_options_are_used():
    seen = []

    def shifted(rewards, *, offset=0.0):
        seen.append(np.shape(rewards))
        return centred(rewards) + offset

    strategy = reward_batches(batch_size=3, group_size=5, large_sizes=())
    report = check_rule(shifted, properties=["zero_sum"], options={"offset": 1.0},
                        rewards=strategy, max_examples=5)
    assert report["zero_sum"].holds is False
    assert {(3, 5), (1, 5)} >= set(seen)


def test_check_rule_validates_its_arguments():
    with pytest.raises(ValueError, match=r"`properties` has unknown name\(s\) 'sorted'; checkable: "):
        check_rule(centred, properties=["sorted"])
    with pytest.raises(ValueError, match="unknown advantage method 'nope'"):
        check_rule("nope")
    with pytest.raises(TypeError, match=r"rule 'tea' does not accept option\(s\) \['k'\]"):
        check_rule("tea", options={"k": 2})
    with pytest.raises(TypeError, match="`rule` must be a registered rule name"):
        check_rule(3)
    with pytest.raises(ValueError, match=r"`rtol` must be in the interval \[0.0, 1.0\), got -1.0"):
        check_rule(centred, rtol=-1.0)
    with pytest.raises(TypeError, match=r"`rtol` must be a real number, got True"):
        check_rule(centred, rtol=True)
    with pytest.raises(ValueError, match="`atol` must be a finite number >= 0.0, got nan"):
        check_rule(centred, atol=float("nan"))
    with pytest.raises(ValueError, match="`max_examples` must be an integer >= 1, got 0"):
        check_rule(centred, max_examples=0)
    with pytest.raises(TypeError, match="`max_examples` must be an integer, got '40'"):
        check_rule(centred, max_examples="40")
    with pytest.raises(ValueError, match=r"`properties` has unknown name\(s\) 'zero_summ'.*"
                                         r"Did you mean 'zero_sum'\?"):
        check_rule(centred, properties="zero_summ")


def test_checkable_properties_cover_the_claimable_ones():
    assert PROPERTIES <= set(CHECKABLE)
