"""The hypothesis strategies of tailext.testing yield what they promise."""

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import find, given, settings

import tailext
from tailext.testing import strategies as ts


@given(ts.tail_problems())
def test_tail_problems_are_finite_and_valid_for_a_tail_fit(problem):
    rewards = problem.rewards
    assert rewards.ndim == 2 and rewards.dtype in (np.float64, np.float32)
    assert rewards.flags.c_contiguous and np.all(np.isfinite(rewards))
    assert tailext.tail_count(rewards.shape[1], problem.tail_fraction) >= 2
    assert 2 <= problem.n_target <= 4096
    tailext.tea_advantages(rewards, tail_fraction=problem.tail_fraction,
                           n_target=problem.n_target)  # raises if the fit were invalid


@settings(max_examples=20)
@given(ts.tail_problems(n_prefixes=3, group_size=(2, 128), large_sizes=()))
def test_tail_problems_with_prefixes_are_valid_for_prefix_tea(problem):
    tailext.prefix_plan(problem.rewards.shape[1], tail_fraction=problem.tail_fraction,
                        n_prefixes=3)  # raises on an invalid size


@settings(max_examples=20)
@given(ts.rewards_and_scores(dim=(2, 3)))
def test_scores_match_the_rewards(pair):
    rewards, scores = pair
    assert scores.shape[:2] == rewards.shape and scores.shape[2] in (2, 3)
    assert scores.dtype == np.float64 and np.all(np.isfinite(scores))


@pytest.mark.parametrize("description, condition", [
    ("an all-equal row next to a varying one",
     lambda r: r.shape[0] > 1 and (np.ptp(r, axis=1) == 0).any() and np.ptp(r, axis=1).max() > 0),
    ("ties inside a varying row", lambda r: any(0 < len(np.unique(row)) < len(row) - 1
                                                and np.ptp(row) > 0 for row in r)),
    ("float32", lambda r: r.dtype == np.float32),
    ("tiny spread", lambda r: 0 < np.ptp(r) < 1e-6),
    ("huge magnitude", lambda r: np.abs(r).max() > 1e9),
    ("a heavy tail (a point > 10 sd from the mean)",
     lambda r: np.ptp(r) > 0 and np.max(np.abs(r - r.mean()) / r.std()) > 10),
    ("a large group", lambda r: r.shape[1] >= 1024),
])
def test_reward_batches_cover_the_hard_cases(description, condition):
    example = find(ts.reward_batches(), condition, settings=settings(max_examples=2000))
    assert condition(example), description


def test_group_sizes_rejects_an_impossible_range():
    with pytest.raises(ValueError, match="no group size in"):
        ts.group_sizes(0.1, group_size=(2, 10))
    with pytest.raises(ValueError, match=r"must be an int >= 1 or a \(low, high\) pair with "
                                         r"1 <= low <= high, got \(5, 2\)"):
        ts.group_sizes(None, group_size=(5, 2))
    with pytest.raises(TypeError, match=r"`group_size` must be an int >= 1 or a \(low, high\) "
                                        r"pair, got 'big'"):
        ts.group_sizes(None, group_size="big")
    with pytest.raises(ValueError, match=r"`min_value` must be in the open interval"):
        ts.tail_fractions(0.0, 0.5)
    with pytest.raises(ValueError, match=r"`kinds` must be one of .* got 'tie'\. Did you mean "
                                         r"'ties'\?"):
        ts.reward_batches(kinds=("tie",)).example()


def test_importing_tailext_does_not_import_hypothesis():
    code = "import sys, tailext; sys.exit('hypothesis' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
