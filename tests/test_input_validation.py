"""Every bad input of the core API gets a clear error (one test per message)."""

import numpy as np
import pytest

import tailext

GOOD = np.random.default_rng(0).normal(size=(3, 16))
SCORES = np.ones((3, 16, 2))


def _with(row, col, value):
    bad = GOOD.copy()
    bad[row, col] = value
    return bad


@pytest.mark.parametrize("call,exc,match", [
    (lambda: tailext.tea_advantages(_with(2, 5, np.nan)), ValueError,
     r"non-finite reward nan in row 2 of `rewards` \(column 5\)"),
    (lambda: tailext.tea_advantages(_with(0, 1, np.inf)), ValueError,
     r"non-finite reward inf in row 0"),
    (lambda: tailext.tea_advantages(np.array([1.0, np.nan, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0])),
     ValueError, r"non-finite reward nan in rewards\[1\]"),
    (lambda: tailext.tea_advantages(np.zeros((2, 3, 4))), ValueError, "must be 1-D"),
    (lambda: tailext.tea_advantages(np.zeros((0, 8))), ValueError, "must not be empty"),
    (lambda: tailext.tea_advantages([]), ValueError, "must not be empty"),
    (lambda: tailext.tea_advantages(np.array(["a", "b"])), TypeError, "real numeric array"),
    (lambda: tailext.tea_advantages(np.ones(8, dtype=bool)), TypeError, "real numeric array"),
    (lambda: tailext.tea_advantages(GOOD, tail_fraction=0.0), ValueError,
     r"`tail_fraction` must be in the open interval \(0.0, 1.0\), got 0.0\."),
    (lambda: tailext.tea_advantages(GOOD, tail_fraction=1.0), ValueError,
     r"open interval \(0.0, 1.0\), got 1.0\."),
    (lambda: tailext.tea_advantages(GOOD, tail_fraction=1e-9), ValueError,
     r"`tail_fraction` must be between 1/1000 and 999/1000 .* got 1e-09\."),
    (lambda: tailext.tea_advantages(GOOD, tail_fraction=True), TypeError,
     r"`tail_fraction` must be a real number, got True\."),
    (lambda: tailext.tea_advantages(GOOD, n_target=1), ValueError,
     r"`n_target` must be an integer in \[2, 10000000\], got 1\."),
    (lambda: tailext.tea_advantages(GOOD, n_target=10**9), ValueError,
     r"`n_target` must be an integer in \[2, 10000000\], got 1000000000\."),
    (lambda: tailext.tea_advantages(GOOD, n_target=2.5), TypeError,
     "`n_target` must be an integer"),
    (lambda: tailext.tea_advantages(GOOD, tail_fraction=0.05), ValueError,
     r"group 0 of `rewards` has 16 valid rollout\(s\), too few for method 'tea' "
     r"\(tail_fraction=0.05\), which needs at least 21"),
    (lambda: tailext.tea_advantages(GOOD[:, :4]), ValueError,
     r"has 4 valid rollout\(s\), too few .* which needs at least 5"),
    (lambda: tailext.tea_advantages(GOOD, scale_floor=-1.0), ValueError,
     "`scale_floor` must be a finite number >= 0"),
    (lambda: tailext.tea_advantages(GOOD, scale_floor=np.nan), ValueError,
     "`scale_floor` must be a finite number >= 0"),
    (lambda: tailext.tea_advantages(GOOD, scale_floor="x"), TypeError,
     "`scale_floor` must be None or a real number"),
    (lambda: tailext.prefix_tea_advantages(GOOD[:, :12]), ValueError,
     r"has 12 valid rollout\(s\), too few for method 'prefix_tea', which needs at least 13"),
    (lambda: tailext.prefix_sizes(12), ValueError,
     r"smallest prefix \(n_1=4\) keeps ceil\(beta\*n_1\)=1 < 2"),
    (lambda: tailext.prefix_sizes(8), ValueError,
     r"prefix sizes \[4, 8, 8\] are not distinct"),
    (lambda: tailext.direct_gradient(GOOD, np.ones((3, 15, 2))), ValueError,
     r"`scores` must have shape \[B, m, d\] = \(3, 16\) \+ \(d,\)"),
    (lambda: tailext.direct_gradient(GOOD[0], np.ones((16,))), ValueError,
     r"`scores` must have shape \[m, d\]"),
    (lambda: tailext.direct_gradient(GOOD, np.ones((3, 16, 0))), ValueError,
     "at least one column"),
    (lambda: tailext.direct_gradient(GOOD, np.full((3, 16, 2), np.nan)), ValueError,
     r"non-finite score nan at `scores` index \(0, 0, 0\)"),
    (lambda: tailext.crossfit_gradient(GOOD, GOOD[:, :8], SCORES[:, :8]), ValueError,
     "`fit_rewards` and `eval_rewards` must have the same shape"),
    (lambda: tailext.prefix_tea_gradient(np.ones((2, 256)), np.ones((2, 256, 1)),
                                         symmetric="yes"), TypeError,
     "`symmetric` must be True or False, got 'yes'"),
    (lambda: tailext.shaped_reward(GOOD, tailext.TailVector(np.zeros(2), np.zeros(3),
                                                            np.ones(3))), ValueError,
     r"`tail.threshold` must have shape \(3,\) to match the rewards, got \(2,\)\."),
    (lambda: tailext.shaped_reward(GOOD, tailext.TailVector(0.0, 0.0, -1.0)), ValueError,
     r"`tail.scale` must be >= 0, got -1.0\."),
    (lambda: tailext.shaped_reward(GOOD, (1.0,)), TypeError,
     r"`tail` must be a TailVector \(threshold, mean, scale\), got \(1.0,\)\."),
    (lambda: tailext.advantages(GOOD, method="nope"), ValueError,
     r"unknown advantage method 'nope'\. Available: .*tea"),
    (lambda: tailext.advantages(GOOD, method="TEA"), ValueError,
     r"unknown advantage method 'TEA'\. Did you mean 'tea'\? Available:"),
    (lambda: tailext.advantages(GOOD, method="prefix-tea"), ValueError,
     r"Did you mean 'prefix_tea'\?"),
    (lambda: tailext.advantages(GOOD, method="grpoz"), ValueError, r"Did you mean 'grpo'\?"),
    (lambda: tailext.advantages(GOOD, method="grpo_z"), ValueError,
     r"unknown advantage method 'grpo_z'\. 'grpo_z' is now 'grpo'"),
    (lambda: tailext.advantages(GOOD, method=3), TypeError,
     r"`method` must be a rule name \(str\), got 3\."),
    (lambda: tailext.advantages(GOOD, method="tea", tail_frac=0.2), TypeError,
     r"method 'tea' got unknown option\(s\) 'tail_frac'; accepted options: n_target, "
     r"scale_floor, tail_fraction\. Did you mean 'tail_fraction'\?"),
    (lambda: tailext.advantages([[1.0, 2.0], [3.0]]), ValueError,
     r"`rewards` must be a rectangular array, got a ragged sequence"),
    (lambda: tailext.advantages(GOOD, valid=np.ones((3, 15), dtype=bool)), ValueError,
     r"`valid` must have the shape of the rewards \(3, 16\), got \(3, 15\)"),
    (lambda: tailext.advantages(GOOD, valid=np.ones((3, 16))), TypeError,
     r"`valid` must be a boolean array"),
    (lambda: tailext.advantages(GOOD, small_groups="skip"), ValueError,
     r"`small_groups` must be one of 'raise', 'zero', got 'skip'"),
    (lambda: tailext.advantages(GOOD, return_info=1), TypeError,
     r"`return_info` must be True or False, got 1"),
])
def test_error_messages(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_register_rule_rejects_duplicates_and_unknown_properties():
    with pytest.raises(ValueError, match="already registered"):
        tailext.register_rule("tea")(lambda rewards: rewards)
    with pytest.raises(ValueError, match=r"`properties` has unknown name\(s\) 'fast'; known: "):
        tailext.register_rule("x", properties={"fast"})


def test_integer_rewards_are_accepted():
    r = np.arange(16).reshape(2, 8)
    np.testing.assert_array_equal(tailext.tea_advantages(r),
                                  tailext.tea_advantages(r.astype(float)))
