"""Every validator of ``tailext._arguments``: its values and every message, as exact text.

The rule (docs/faq.md): ``TypeError`` for a wrong type — including a bool where a number is
expected and a non-integral float (NaN and inf too) where an integer is expected —,
``ValueError`` for a right type with a bad value. Messages name the argument and show the
value as given.
"""

from fractions import Fraction

import numpy as np
import pytest

from tailext import _arguments as ai
from error_text import error_text

HUGE = 10**400  # an int beyond the float64 range
HUGE_SHOWN = repr(HUGE)[:77] + "..."


def check(call, expected):
    assert error_text(call) == expected


# ------------------------------------------------------------------------ shown, did_you_mean
@pytest.mark.parametrize("value, text", [
    (0.25, "0.25"), (1e-09, "1e-09"), ("abc", "'abc'"), (None, "None"), (True, "True"),
    (np.float32(0.3), "0.3"),  # numpy's float32 form, not float64's 0.30000001192092896
    (np.float64(0.1), "0.1"), (np.int64(5), "5"), (np.bool_(True), "True"),
    (np.str_("tea"), "'tea'"), (float("nan"), "nan"), (float("-inf"), "-inf"),
    ([1, 2.0], "[1, 2.0]"), (HUGE, HUGE_SHOWN),
])
def test_shown(value, text):
    assert ai.shown(value) == text


@pytest.mark.parametrize("name, hint", [
    ("TEA", " Did you mean 'tea'?"),            # case
    ("prefix-tea", " Did you mean 'prefix_tea'?"),  # '-' for '_'
    (" Tea ", " Did you mean 'tea'?"),          # spaces
    ("grpoz", " Did you mean 'grpo'?"),         # misspelling
    ("zzzz", ""), (3, ""), (None, ""),
])
def test_did_you_mean(name, hint):
    assert ai.did_you_mean(name, ["tea", "prefix_tea", "grpo"]) == hint


# ------------------------------------------------------------------------------- real_iv
@pytest.mark.parametrize("value, expected", [
    (0.5, 0.5), (2, 2.0), (np.float32(0.5), 0.5), (np.int64(3), 3.0), (Fraction(1, 4), 0.25),
])
def test_real_iv_accepts_real_numbers(value, expected):
    got = ai.real_iv(value, "x")
    assert got == expected and type(got) is float


@pytest.mark.parametrize("value, shown", [
    (True, "True"), (np.bool_(False), "False"), ("0.5", "'0.5'"), (None, "None"),
    (1j, "1j"), ([0.5], "[0.5]"),
])
def test_real_iv_type_errors(value, shown):
    check(lambda: ai.real_iv(value, "x"), f"TypeError: `x` must be a real number, got {shown}.")


def test_real_iv_allow_none():
    assert ai.real_iv(None, "x", allow_none=True) is None
    check(lambda: ai.real_iv("a", "x", allow_none=True),
          "TypeError: `x` must be None or a real number, got 'a'.")


@pytest.mark.parametrize("value, shown", [
    (float("nan"), "nan"), (float("inf"), "inf"), (-np.inf, "-inf"), (np.float32("nan"), "nan"),
    (HUGE, HUGE_SHOWN), (-HUGE, repr(-HUGE)[:77] + "..."),
])
def test_real_iv_non_finite(value, shown):
    check(lambda: ai.real_iv(value, "x"), f"ValueError: `x` must be finite, got {shown}.")


@pytest.mark.parametrize("bounds, value, expected", [
    (dict(low=0.0), -1.0, "`x` must be a finite number >= 0.0, got -1.0."),
    (dict(low=0.0, low_open=True), 0.0, "`x` must be a finite number > 0.0, got 0.0."),
    (dict(high=1.0), 2, "`x` must be a finite number <= 1.0, got 2."),
    (dict(high=1.0, high_open=True), np.float32(1.0), "`x` must be a finite number < 1.0, got 1.0."),
    (dict(low=0.0, high=1.0), 1.5, "`x` must be in the interval [0.0, 1.0], got 1.5."),
    (dict(low=0.0, high=1.0, low_open=True, high_open=True), 0.0,
     "`x` must be in the open interval (0.0, 1.0), got 0.0."),
    (dict(low=0.0, high=1.0, high_open=True), 1.0, "`x` must be in the interval [0.0, 1.0), got 1.0."),
    (dict(low=0.0, high=1.0, low_open=True), -0.0,
     "`x` must be in the interval (0.0, 1.0], got -0.0."),
    (dict(low=0.0), float("nan"), "`x` must be a finite number >= 0.0, got nan."),
    (dict(low=0.0), HUGE, f"`x` must be a finite number >= 0.0, got {HUGE_SHOWN}."),
])
def test_real_iv_bounds(bounds, value, expected):
    check(lambda: ai.real_iv(value, "x", **bounds), f"ValueError: {expected}")


def test_real_iv_bounds_are_inclusive_unless_open():
    assert ai.real_iv(0.0, "x", low=0.0, high=1.0) == 0.0
    assert ai.real_iv(1.0, "x", low=0.0, high=1.0) == 1.0


# ---------------------------------------------------------------------------- integer_iv
@pytest.mark.parametrize("value, expected", [
    (4, 4), (4.0, 4), (np.int64(4), 4), (np.float32(4.0), 4), (Fraction(8, 2), 4),
    (HUGE, HUGE), (1e300, int(1e300)),  # every float this large is integral
])
def test_integer_iv_accepts_integral_values(value, expected):
    got = ai.integer_iv(value, "n")
    assert got == expected and type(got) is int


@pytest.mark.parametrize("value, shown", [
    (True, "True"), (np.bool_(True), "True"), (2.5, "2.5"), (np.float64(2.5), "2.5"),
    (float("nan"), "nan"), (float("inf"), "inf"), ("3", "'3'"), (None, "None"), ([3], "[3]"),
    (Fraction(1, 3), "Fraction(1, 3)"), (Fraction(HUGE, 3), repr(Fraction(HUGE, 3))[:77] + "..."),
])
def test_integer_iv_type_errors(value, shown):
    check(lambda: ai.integer_iv(value, "n"), f"TypeError: `n` must be an integer, got {shown}.")


def test_integer_iv_allow_none():
    assert ai.integer_iv(None, "n", allow_none=True) is None
    check(lambda: ai.integer_iv(1.5, "n", allow_none=True),
          "TypeError: `n` must be None or an integer, got 1.5.")


@pytest.mark.parametrize("bounds, value, expected", [
    (dict(low=1), 0, "`n` must be an integer >= 1, got 0."),
    (dict(low=1), -3.0, "`n` must be an integer >= 1, got -3.0."),
    (dict(high=5), np.int64(6), "`n` must be an integer <= 5, got 6."),
    (dict(low=1, high=5), 6, "`n` must be an integer in [1, 5], got 6."),
    (dict(low=1, high=5), HUGE, f"`n` must be an integer in [1, 5], got {HUGE_SHOWN}."),
    (dict(low=1, high=5), -HUGE, f"`n` must be an integer in [1, 5], got {repr(-HUGE)[:77]}...."),
])
def test_integer_iv_bounds(bounds, value, expected):
    check(lambda: ai.integer_iv(value, "n", **bounds), f"ValueError: {expected}")


# ------------------------------------------------------------------------------- bool_iv
def test_bool_iv():
    assert ai.bool_iv(True, "flag") is True and ai.bool_iv(np.bool_(False), "flag") is False
    for value, shown in ((1, "1"), (0, "0"), ("yes", "'yes'"), (None, "None"),
                         (np.int64(1), "1"), (1.0, "1.0")):
        check(lambda: ai.bool_iv(value, "flag"),
              f"TypeError: `flag` must be True or False, got {shown}.")


# ----------------------------------------------------------------------------- choice_iv
def test_choice_iv_strings():
    choices = ("raise", "zero")
    assert ai.choice_iv("zero", "policy", choices) == "zero"
    got = ai.choice_iv(np.str_("zero"), "policy", choices)
    assert got == "zero" and type(got) is str
    check(lambda: ai.choice_iv("Zero", "policy", choices),
          "ValueError: `policy` must be one of 'raise', 'zero', got 'Zero'. Did you mean 'zero'?")
    check(lambda: ai.choice_iv("skip", "policy", choices),
          "ValueError: `policy` must be one of 'raise', 'zero', got 'skip'.")
    for value, shown in ((0, "0"), (None, "None"), (True, "True"), (["zero"], "['zero']")):
        check(lambda: ai.choice_iv(value, "policy", choices),
              f"TypeError: `policy` must be one of 'raise', 'zero', got {shown}.")


def test_choice_iv_integers():
    assert ai.choice_iv(1, "ddof", (0, 1)) == 1
    got = ai.choice_iv(1.0, "ddof", (0, 1))  # integral floats, as integer_iv takes them
    assert got == 1 and type(got) is int
    assert ai.choice_iv(np.int64(0), "ddof", (0, 1)) == 0
    check(lambda: ai.choice_iv(2, "ddof", (0, 1)),
          "ValueError: `ddof` must be one of 0, 1, got 2.")
    check(lambda: ai.choice_iv(HUGE, "ddof", (0, 1)),
          f"ValueError: `ddof` must be one of 0, 1, got {HUGE_SHOWN}.")
    for value, shown in ((True, "True"), (0.5, "0.5"), (float("nan"), "nan"), ("1", "'1'"),
                         (None, "None")):
        check(lambda: ai.choice_iv(value, "ddof", (0, 1)),
              f"TypeError: `ddof` must be one of 0, 1, got {shown}.")


# ------------------------------------------------------------------------------- seed_iv
def test_seed_iv_values():
    generator = np.random.default_rng(1)
    assert ai.seed_iv(generator) is generator  # shared: successive calls draw new numbers
    assert isinstance(ai.seed_iv(None), np.random.Generator)
    assert ai.seed_iv(7).random() == np.random.default_rng(7).random()
    assert ai.seed_iv(np.int64(7)).random() == np.random.default_rng(7).random()
    assert ai.seed_iv(HUGE).random() == np.random.default_rng(HUGE).random()


def test_seed_iv_errors():
    check(lambda: ai.seed_iv(-1), "ValueError: `seed` must be a non-negative integer, got -1.")
    check(lambda: ai.seed_iv(np.int64(-2), "rng"),
          "ValueError: `rng` must be a non-negative integer, got -2.")
    for value, shown in (("abc", "'abc'"), (True, "True"), (1.5, "1.5"), (1.0, "1.0"),
                         (np.random.RandomState(0), None)):
        shown = shown or ai.shown(value)
        check(lambda: ai.seed_iv(value),
              "TypeError: `seed` must be None, a non-negative integer or a "
              f"numpy.random.Generator, got {shown}.")


# ---------------------------------------------------------------- tail_fraction, n_target
def test_tail_fraction_iv():
    assert ai.tail_fraction_iv(0.25) == 0.25 and ai.tail_fraction_iv(np.float32(0.5)) == 0.5
    assert ai.tail_fraction_iv(0.001) == 0.001 and ai.tail_fraction_iv(0.999) == 0.999
    for value in (0.0, 1.0, -0.5, float("nan"), float("inf")):
        check(lambda: ai.tail_fraction_iv(value),
              "ValueError: `tail_fraction` must be in the open interval (0.0, 1.0), got "
              f"{value!r}.")
    for value, shown in ((1e-9, "1e-09"), (0.9999999, "0.9999999"), (np.float32(1e-5), "1e-05")):
        check(lambda: ai.tail_fraction_iv(value, "beta"),
              "ValueError: `beta` must be between 1/1000 and 999/1000 (it is read as the "
              f"nearest fraction with denominator <= 1000), got {shown}.")
    for value, shown in ((True, "True"), ("0.25", "'0.25'"), (None, "None")):
        check(lambda: ai.tail_fraction_iv(value),
              f"TypeError: `tail_fraction` must be a real number, got {shown}.")


def test_n_target_iv():
    assert ai.n_target_iv(128) == 128 and ai.n_target_iv(128.0) == 128
    assert ai.n_target_iv(1, low=1) == 1 and ai.n_target_iv(10**7) == 10**7
    for value, shown in ((1, "1"), (10**7 + 1, "10000001"), (10**9, "1000000000"),
                         (HUGE, HUGE_SHOWN), (np.int64(-5), "-5")):
        check(lambda: ai.n_target_iv(value),
              f"ValueError: `n_target` must be an integer in [2, 10000000], got {shown}.")
    for value, shown in ((2.5, "2.5"), (True, "True"), ("128", "'128'"), (None, "None"),
                         (float("inf"), "inf")):
        check(lambda: ai.n_target_iv(value),
              f"TypeError: `n_target` must be an integer, got {shown}.")


# ----------------------------------------------------------------------------- budgets_iv
def test_budgets_iv_values():
    for n, expected in ((4, [4]), (4.0, [4]), (np.int64(4), [4]), (np.array(4), [4]),
                        ([1, 2.0, 4], [1, 2, 4]), ((1, 3), [1, 3]), (np.array([2, 3]), [2, 3]),
                        (range(1, 4), [1, 2, 3])):
        got = ai.budgets_iv(n)
        assert got.dtype == np.int64 and got.tolist() == expected


@pytest.mark.parametrize("n, expected", [
    (0, "ValueError: `n` must be an integer >= 1, got 0."),
    ([1, 0], "ValueError: `n[1]` must be an integer >= 1, got 0."),
    (1.5, "TypeError: `n` must be an integer, got 1.5."),
    ([1, 2.5], "TypeError: `n[1]` must be an integer, got 2.5."),
    ([1, float("nan")], "TypeError: `n[1]` must be an integer, got nan."),
    ([True], "TypeError: `n[0]` must be an integer, got True."),
    ("4", "TypeError: `n` must be an integer, got '4'."),
    (None, "TypeError: `n` must be an integer, got None."),
    (object(), None),
    ([], "ValueError: `n` must be an integer or a non-empty 1-D sequence of integers, got []."),
    ([[1, 2]], "ValueError: `n` must be an integer or a non-empty 1-D sequence of integers, "
               "got [[1, 2]]."),
    ([1, 9], "ValueError: `n[1]` must be <= the number of samples M = 8, got 9."),
    (9.0, "ValueError: `n` must be <= the number of samples M = 8, got 9.0."),
    (HUGE, f"ValueError: `n` must be <= the number of samples M = 8, got {HUGE_SHOWN}."),
])
def test_budgets_iv_errors(n, expected):
    if expected is None:
        expected = ("TypeError: `n` must be an integer or a 1-D sequence of integers, got "
                    f"{ai.shown(n)}.")
    check(lambda: ai.budgets_iv(n, high=8, high_what="the number of samples M"), expected)


def test_budgets_iv_low():
    check(lambda: ai.budgets_iv([2, 1], low=2), "ValueError: `n[1]` must be an integer >= 2, got 1.")


# ---------------------------------------------------------------------- arrays of numbers
@pytest.mark.parametrize("values, expected", [
    ([[1.0, 2.0], [3.0]], "ValueError: `x` must be a rectangular array, got a ragged sequence "
                          "(rows of different lengths); pad the rows to one length and mark "
                          "the padding with `valid`."),
    (["a", "b"], "TypeError: `x` must be a real numeric array, got dtype <U1."),
    ([True, False], "TypeError: `x` must be a real numeric array, got dtype bool."),
    ([1 + 1j], "TypeError: `x` must be a real numeric array, got dtype complex128."),
    ([None, 1.0], "TypeError: `x` must be a real numeric array, got dtype object."),
    ([HUGE], "TypeError: `x` must be a real numeric array, got dtype object."),
])
def test_numeric_array_iv_errors(values, expected):
    check(lambda: ai.numeric_array_iv(values, "x"), expected)


def test_numeric_array_iv_keeps_real_dtypes():
    assert ai.numeric_array_iv([1, 2], "x").dtype.kind == "i"
    assert ai.numeric_array_iv(np.float32([1]), "x").dtype == np.float32


def test_finite_array_iv():
    got = ai.finite_array_iv([1, 2], "u")
    assert got.dtype == np.float64 and got.tolist() == [1.0, 2.0]
    check(lambda: ai.finite_array_iv([1.0, np.nan], "u"),
          "ValueError: `u` must be finite, got nan at index (1,).")
    check(lambda: ai.finite_array_iv([[1.0], [-np.inf]], "u"),
          "ValueError: `u` must be finite, got -inf at index (1, 0).")
    check(lambda: ai.finite_array_iv(np.float32(np.inf), "u"), "ValueError: `u` must be finite, got inf.")
    check(lambda: ai.finite_array_iv([], "u"), "ValueError: `u` must not be empty, got shape (0,).")
    check(lambda: ai.finite_array_iv(["a"], "u"),
          "TypeError: `u` must be a real numeric array, got dtype <U1.")


def test_first_nonfinite():
    index, value = ai.first_nonfinite(np.array([[1.0, 2.0], [np.inf, np.nan]]))
    assert index == (1, 0) and value == np.inf
    index, value = ai.first_nonfinite(np.array([[np.nan, 1.0, np.inf]]),
                                      np.array([[False, True, True]]))
    assert index == (0, 2)


# -------------------------------------------------------------------- rewards and masks
def test_rewards_iv_values_and_no_aliasing():
    given = np.arange(8.0)
    batch, was_1d = ai.rewards_iv(given)
    assert was_1d and batch.shape == (1, 8) and batch.flags.c_contiguous
    batch, was_1d = ai.rewards_iv(np.arange(16).reshape(2, 8))
    assert not was_1d and batch.dtype == np.float64


@pytest.mark.parametrize("rewards, expected", [
    (np.zeros((2, 3, 4)), "ValueError: `r` must be 1-D (one group) or 2-D [B, m] (B groups of m "
                          "rollouts), got shape (2, 3, 4)."),
    (np.float64(1.0), "ValueError: `r` must be 1-D (one group) or 2-D [B, m] (B groups of m "
                      "rollouts), got shape ()."),
    ([], "ValueError: `r` must not be empty, got shape (0,)."),
    (np.zeros((0, 8)), "ValueError: `r` must not be empty, got shape (0, 8)."),
    ([1.0, np.nan], "ValueError: non-finite reward nan in r[1]; rewards must be finite (mark a "
                    "reward that could not be computed invalid with `valid`)."),
    ([[1.0, 2.0], [3.0, -np.inf]], "ValueError: non-finite reward -inf in row 1 of `r` (column "
                                   "1); rewards must be finite (mark a reward that could not be "
                                   "computed invalid with `valid`)."),
    (["a"], "TypeError: `r` must be a real numeric array, got dtype <U1."),
])
def test_rewards_iv_errors(rewards, expected):
    check(lambda: ai.rewards_iv(rewards, "r"), expected)


def test_masked_rewards_iv_allows_non_finite_invalid_entries():
    rewards = np.array([[1.0, np.nan, 3.0]])
    batch, mask, was_1d = ai.masked_rewards_iv(rewards, np.array([[True, False, True]]))
    assert mask.tolist() == [[True, False, True]] and not was_1d
    assert np.isnan(rewards[0, 1])  # the input is not modified
    check(lambda: ai.masked_rewards_iv(rewards, np.array([[True, True, False]])),
          "ValueError: non-finite reward nan in row 0 of `rewards` (column 1); rewards must be "
          "finite (mark a reward that could not be computed invalid with `valid`).")


def test_valid_iv():
    assert ai.valid_iv(None, (2, 3), False) is None
    assert ai.valid_iv(np.ones(3, bool), (1, 3), True).shape == (1, 3)
    check(lambda: ai.valid_iv(np.ones((2, 3)), (2, 3), False),
          "TypeError: `valid` must be a boolean array (True = a valid rollout), got dtype "
          "float64.")
    check(lambda: ai.valid_iv([1, 0, 1], (1, 3), True),
          "TypeError: `valid` must be a boolean array (True = a valid rollout), got dtype int64.")
    check(lambda: ai.valid_iv(np.ones((2, 2), bool), (2, 3), False),
          "ValueError: `valid` must have the shape of the rewards (2, 3), got (2, 2).")
    check(lambda: ai.valid_iv(np.ones(2, bool), (1, 3), True),
          "ValueError: `valid` must have the shape of the rewards (3,), got (2,).")


def test_scores_iv():
    assert ai.scores_iv(np.ones((3, 2)), (3,), True).shape == (1, 3, 2)
    check(lambda: ai.scores_iv(np.ones((2, 7, 3)), (2, 8), False),
          "ValueError: `scores` must have shape [B, m, d] = (2, 8) + (d,) to match the rewards, "
          "got (2, 7, 3).")
    check(lambda: ai.scores_iv(np.ones(3), (3,), True, "S"),
          "ValueError: `S` must have shape [m, d] = (3,) + (d,) to match the rewards, got (3,).")
    check(lambda: ai.scores_iv(np.ones((2, 8, 0)), (2, 8), False),
          "ValueError: `scores` must have at least one column (d >= 1), got shape (2, 8, 0).")
    check(lambda: ai.scores_iv(np.full((3, 1), np.inf), (3,), True),
          "ValueError: non-finite score inf at `scores` index (0, 0); scores must be finite.")
    check(lambda: ai.scores_iv([["a"]], (1,), True),
          "TypeError: `scores` must be a real numeric array, got dtype <U1.")


# --------------------------------------------------------------------------- distributions
def test_distribution_iv_normalizes_without_overflow_or_underflow():
    for weights in ([1e308, 1e308], [5e-324, 5e-324], [1, 1], np.float32([3, 3])):
        _, probs, was_1d = ai.distribution_iv([0.0, 1.0], weights)
        assert was_1d and probs.tolist() == [[0.5, 0.5]]
    _, probs, _ = ai.distribution_iv([[0.0, 1.0, 2.0]], [[1.7e308, 0.0, 1.7e308]])
    assert probs.tolist() == [[0.5, 0.0, 0.5]]


@pytest.mark.parametrize("values, weights, expected", [
    ([0.0, 1.0], [0.5 + 1j, 0.5], "TypeError: `weights` must be a real numeric array, got dtype "
                                  "complex128."),
    ([0.0, 1.0], ["a", "b"], "TypeError: `weights` must be a real numeric array, got dtype <U1."),
    ([0.0, 1.0], [True, False], "TypeError: `weights` must be a real numeric array, got dtype "
                                "bool."),
    ([0.0, 1.0], [1.0], "ValueError: `weights` must have the shape of `values` (2,), got (1,)."),
    ([[0.0, 1.0]], [0.5, 0.5], "ValueError: `weights` must have the shape of `values` (1, 2), "
                               "got (2,)."),
    ([0.0, 1.0], [1, -1], "ValueError: `weights` must be finite and >= 0, got -1 at index (1,)."),
    ([[0.0, 1.0]], [[1.0, np.nan]], "ValueError: `weights` must be finite and >= 0, got nan at "
                                    "index (0, 1)."),
    ([0.0, 1.0], [np.inf, 1.0], "ValueError: `weights` must be finite and >= 0, got inf at "
                                "index (0,)."),
    ([0.0, 1.0], [0, 0], "ValueError: `weights` must have a positive entry in every row, got "
                         "all zeros."),
    ([[0.0, 1.0], [0.0, 1.0]], [[1, 1], [0, 0]], "ValueError: `weights` must have a positive "
                                                 "entry in every row, got all zeros in row 1."),
    ([0.0, np.nan], [1, 1], "ValueError: non-finite reward nan in values[1]; rewards must be "
                            "finite (mark a reward that could not be computed invalid with "
                            "`valid`)."),
])
def test_distribution_iv_errors(values, weights, expected):
    check(lambda: ai.distribution_iv(values, weights), expected)


def test_distribution_iv_names():
    check(lambda: ai.distribution_iv([0.0, 1.0], [-1.0, 1.0], "pool", "pool_weights"),
          "ValueError: `pool_weights` must be finite and >= 0, got -1.0 at index (0,).")


# ---------------------------------------------------------------------------- paired scores
def test_paired_scores_iv():
    a, b = ai.paired_scores_iv([1, 2], [3.0, 4.0])
    assert a.dtype == b.dtype == np.float64
    check(lambda: ai.paired_scores_iv([1.0, 2.0], [1.0]),
          "ValueError: `a` and `b` must have the same shape (paired by prompt), got (2,) and "
          "(1,).")
    check(lambda: ai.paired_scores_iv([1.0], [np.inf]),
          "ValueError: `b` must be finite, got inf at index (0,).")
    check(lambda: ai.paired_scores_iv(np.zeros((2, 2, 2)), np.zeros((2, 2, 2))),
          "ValueError: `a` must be [P] or [P, C] per-prompt scores with P >= 1, got shape "
          "(2, 2, 2).")
    check(lambda: ai.paired_scores_iv([], []),
          "ValueError: `a` must be [P] or [P, C] per-prompt scores with P >= 1, got shape (0,).")
    check(lambda: ai.paired_scores_iv([1.0], ["x"]),
          "TypeError: `b` must be a real numeric array, got dtype <U1.")
    check(lambda: ai.paired_scores_iv([1.0], [2.0, 3.0], ("ours", "theirs")),
          "ValueError: `ours` and `theirs` must have the same shape (paired by prompt), got (1,) "
          "and (2,).")


# ---------------------------------------------------------------------------- tail vectors
def test_tail_iv():
    h, mu, s = ai.tail_iv((0.0, 1.0, 2.0), 3, False)  # scalars broadcast over the groups
    assert h.tolist() == [0.0] * 3 and s.tolist() == [2.0] * 3
    for tail in ((1.0,), None, "abc", {"threshold": 0.0}):
        check(lambda: ai.tail_iv(tail, 1, True),
              "TypeError: `tail` must be a TailVector (threshold, mean, scale), got "
              f"{ai.shown(tail)}.")
    check(lambda: ai.tail_iv((np.zeros(2), np.zeros(3), np.ones(3)), 3, False),
          "ValueError: `tail.threshold` must have shape (3,) to match the rewards, got (2,).")
    check(lambda: ai.tail_iv((np.zeros(3), 0.0, 1.0), 3, True),
          "ValueError: `tail.threshold` must have shape () to match the rewards, got (3,).")
    check(lambda: ai.tail_iv((0.0, np.nan, 1.0), 1, True),
          "ValueError: `tail.mean` must be finite, got nan.")
    check(lambda: ai.tail_iv((np.zeros(2), np.zeros(2), [1.0, np.inf]), 2, False),
          "ValueError: `tail.scale` must be finite, got inf at index (1,).")
    check(lambda: ai.tail_iv((0.0, 0.0, -1.0), 1, True),
          "ValueError: `tail.scale` must be >= 0, got -1.0.")
    check(lambda: ai.tail_iv((np.zeros(2), np.zeros(2), [1.0, -0.5]), 2, False),
          "ValueError: `tail.scale` must be >= 0, got -0.5 at index (1,).")


# --------------------------------------------------------------------- the structural rule
_VALIDATED_MODULES = ("evaluation", "oracle", "constants", "prefix", "estimators")
#: Public names that are not argument-checking entry points: validators themselves, and
#: the documented unvalidated fast paths of hot loops.
_EXEMPT = {"tail_settings_iv", "tail_size_iv", "best_of_n_from_cdf", "top_blocks"}


@pytest.mark.parametrize("module_name", _VALIDATED_MODULES)
def test_each_public_function_with_several_arguments_has_its_own_validator(module_name):
    import importlib
    import inspect

    module = importlib.import_module(f"tailext.{module_name}")
    for name in module.__all__:
        function = getattr(module, name)
        if name in _EXEMPT or not inspect.isfunction(function):
            continue
        if len(inspect.signature(function).parameters) > 1:
            assert hasattr(module, f"_{name}_iv"), f"tailext.{module_name}.{name}"


def test_no_module_imports_another_modules_private_validator():
    import ast
    import pathlib

    root = pathlib.Path(ai.__file__).parent
    offenders = []
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                offenders += [f"{path.relative_to(root)}: {alias.name}" for alias in node.names
                              if alias.name.startswith("_") and alias.name.endswith("_iv")]
    assert offenders == []
