"""The rules' masked torch implementations: masks ≡ dropping rows, small groups, precision
across dtypes, exact power-of-two equivariance, Prefix-TEA's order independence, and no
device sync on the ``check_finite=False`` path (checked on the CPU by intercepting every op
that would read the device; the CUDA versions are in ``test_torch_adapter.py``)."""

from __future__ import annotations

import contextlib
import warnings

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

torch = pytest.importorskip("torch")

import tailext  # noqa: E402
import tailext.torch as tt  # noqa: E402
from tailext import reference  # noqa: E402
from tailext.rules.tea import prefix_positions  # noqa: E402

METHODS = tailext.available_methods()
SEEDED = {m for m in METHODS if "seed" in tailext.get_rule(m).options}

# 12 rules, several properties each: a third of the profile's examples (at least 15) keeps
# the added default run near 30 s on 2 cores; HYPOTHESIS_PROFILE=thorough scales it up.
FEW = settings(max_examples=max(15, settings.default.max_examples // 4))


def _options(method, m, data=None):
    options = {"seed": 7} if method in SEEDED else {}
    if method in ("bon_mean", "maxk_loo1") and data is not None:
        options["k"] = data.draw(st.integers(2, max(2, m // 2)), label="k")
    return options


def _minimum(method, options):
    rule = tailext.get_rule(method)
    return rule.min_group_size(**rule.resolve(options))


@st.composite
def masked_batches(draw, min_m=2, max_m=40, max_groups=5):
    """``(rewards[B, m], valid[B, m])``: continuous, tied (3 levels) or all-equal rows, each
    with its own number of valid rollouts from 0 to m at random places."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1), label="seed"))
    shape = (draw(st.integers(1, max_groups)), draw(st.integers(min_m, max_m)))
    kind = draw(st.sampled_from(["normal", "ties", "equal"]))
    if kind == "normal":
        rewards = rng.normal(size=shape)
    elif kind == "ties":
        rewards = rng.integers(0, 3, size=shape).astype(float)
    else:
        rewards = np.full(shape, rng.normal())
    scale, offset = draw(st.sampled_from([(1.0, 0.0), (1e-3, 0.0), (1e3, 2e3)]))
    counts = rng.integers(0, shape[1] + 1, size=shape[0])
    counts[rng.random(shape[0]) < 0.5] = shape[1]  # many full rows
    valid = np.zeros(shape, dtype=bool)
    for row, count in enumerate(counts):
        valid[row, rng.permutation(shape[1])[:count]] = True
    return rewards * scale + offset, valid


# --- the rule on a group of its valid rollouts, computed from the definitions -------------

def _tie_means_by_loop(values, ordered):
    out = values.copy()
    for value in np.unique(ordered):
        tied = ordered == value
        out[tied] = values[tied].mean()
    return out


def _prefix_random_by_definition(kept, keys, options):
    """Prefix-TEA ``ordering="random"`` of one group from its definition: sort, place rank
    ``ρ`` at position ``π(ρ)``, the ``"given"`` rule on that order, back, tied means."""
    ranks = np.argsort(kept, kind="stable")
    ordered = kept[ranks]
    position = prefix_positions(keys[None, :kept.size])[0]
    arranged = np.empty_like(kept)
    arranged[position] = ordered
    given = {**options, "ordering": "given"}
    given.pop("seed")
    by_rank = tailext.advantages(arranged, method="prefix_tea", **given)[position]
    out = np.empty_like(kept)
    out[ranks] = _tie_means_by_loop(by_rank, ordered)
    return out


def expected_by_dropping(method, rewards, valid, options):
    """Each row's advantages computed on its valid rollouts alone (in order); 0 elsewhere
    and for groups below the minimum. Random rules use the keys the torch rule draws
    (``seed``'s ``random((B, m))``): Chow's split is the smallest keys of the valid columns,
    Prefix-TEA's random order the first ``n`` keys of the row."""
    minimum = _minimum(method, options)
    keys = (np.random.default_rng(options["seed"]).random(rewards.shape)
            if method in SEEDED else None)
    out = np.zeros_like(rewards)
    for row in range(rewards.shape[0]):
        kept = rewards[row, valid[row]]
        n = kept.size
        if n < minimum or n == 0:
            continue
        if method == "chow_bon_rl":
            n_select = options.get("n_select") or n // 2
            selected = np.zeros(n, dtype=bool)
            selected[np.argsort(keys[row, valid[row]])[:n_select]] = True
            value = reference.chow_bon_rl(kept[None], selected[None])[0]
        elif method == "prefix_tea":
            value = _prefix_random_by_definition(kept, keys[row], options)
        else:
            value = tailext.advantages(kept, method=method, **options)
        out[row, valid[row]] = value
    return out


def _term_scale(method, rewards, valid, options):
    """Per row: the size of the terms an advantage is made of, ``S``, in units of which a
    float64 result is compared (``|A|`` itself can be far smaller after cancellation)."""
    spread = np.array([np.ptp(r[v]) if v.any() else 0.0 for r, v in zip(rewards, valid)])
    if method in ("tea", "tea_raw", "prefix_tea"):
        # ψ = (r − h)/β · [1 + κ/(2s)(r + h − 2μ)] ≤ spread/β · (1 + κ·spread/s), s ≥ ½√v sd
        spread = spread * 4.0 * (1.0 + 2.0 * 6.0)
        if method == "prefix_tea":  # the jackknife sums terms with weights up to |w| m/n ~ 10
            spread = spread * 20.0
    if method in ("grpo", "cat_bon", "bon_mean", "bon_max_second"):
        spread = np.where(spread > 0, rewards.shape[1] * 4.0, 0.0)  # z-scores: |z| ≤ √m
    if method in ("chow_bon_rl", "rloo", "mean_centred", "bon_max_mean"):
        spread = spread * rewards.shape[1]
    return spread[:, None]


@pytest.mark.parametrize("method", METHODS)
@FEW
@given(batch=masked_batches(), data=st.data())
def test_masked_rows_equal_the_rule_on_their_valid_rollouts(method, batch, data):
    """Mask ≡ dropping the rows: every row of the masked torch result (float64) equals the
    rule on its valid rollouts alone, within 1e-12 of the row's term scale; invalid
    rollouts and groups below the minimum get exact zeros; the counts are right."""
    rewards, valid = batch
    options = _options(method, rewards.shape[1], data)
    expected = expected_by_dropping(method, rewards, valid, options)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = tt.advantages(torch.tensor(np.where(valid, rewards, np.nan)), method,
                               valid=torch.tensor(valid), return_info=True, **options)
        numpy_info = tailext.advantages(np.where(valid, rewards, np.nan), method,
                                        valid=valid, small_groups="zero", return_info=True,
                                        **options)
    got = result.advantages.numpy()
    bound = 1e-12 * _term_scale(method, rewards, valid, options)
    assert np.all(np.abs(got - expected) <= bound), np.abs(got - expected).max()
    counts = valid.sum(axis=1)
    minimum = _minimum(method, options)
    assert np.all(got[~valid] == 0.0)
    assert np.all(got[(counts < minimum)] == 0.0)
    assert int(result.small_groups) == int(((counts > 0) & (counts < minimum)).sum())
    assert int(result.invalid) == int((~valid).sum())
    assert int(result.discrete_groups) == numpy_info.discrete_groups


@pytest.mark.parametrize("method", METHODS)
def test_small_groups_get_zeros_are_counted_and_warn_once(method):
    m = 24
    options = _options(method, m)
    minimum = _minimum(method, options)
    rewards = np.random.default_rng(3).normal(size=(5, m))
    counts = [0, 1, max(1, minimum - 1), minimum, m]
    valid = np.arange(m)[None] < np.array(counts)[:, None]
    tensor, mask = torch.tensor(rewards), torch.tensor(valid)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = tt.advantages(tensor, method, valid=mask, return_info=True, **options)
    small = [c for c in counts if 0 < c < minimum]
    assert int(result.small_groups) == len(small)
    assert int(result.invalid) == int((~valid).sum())
    got = result.advantages.numpy()
    for row, count in enumerate(counts):
        if count < minimum:
            assert np.all(got[row] == 0.0)
    assert np.any(got[-1] != 0.0)  # the full row is computed
    messages = [w for w in caught if issubclass(w.category, tailext.SmallGroupWarning)]
    assert len(messages) == (1 if small else 0)
    if small:
        with pytest.raises(ValueError, match=rf"group 1 of `rewards` has 1 valid "
                                             rf"rollout\(s\), too few for method '{method}'"):
            tt.advantages(tensor, method, valid=mask, small_groups="raise", **options)


# --- precision: low-precision inputs against float64 on the same values --------------------

#: Unit roundoff of each dtype (half an ulp of 1) and the exponent range whose values (with
#: offsets up to 1e6 × the spread) it represents in its normal range.
UNIT = {torch.float32: 2.0 ** -24, torch.bfloat16: 2.0 ** -8, torch.float16: 2.0 ** -11}
DECADES = {torch.float32: (-30, 30), torch.bfloat16: (-30, 30), torch.float16: (-2, 2)}


@st.composite
def unscaled_rewards(draw):
    """``[B, m]`` rewards ``offset + base``: base continuous, tied or equal rows, offset
    0..1e6 (in units of the base's scale); the test scales them across the dtype's range."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1), label="seed"))
    shape = (draw(st.integers(1, 4)), draw(st.integers(16, 48)))  # prefix_tea needs 13
    kind = draw(st.sampled_from(["normal", "normal", "ties", "equal"]))
    base = {"normal": lambda: rng.normal(size=shape),
            "ties": lambda: rng.integers(0, 3, size=shape).astype(float),
            "equal": lambda: np.full(shape, rng.normal())}[kind]()
    return base + draw(st.sampled_from([0.0, 1.0, 1e3, 1e6]), label="offset")


@pytest.mark.parametrize("method", METHODS)
@FEW
@given(data=st.data())
def test_low_precision_inputs_give_the_float64_answer(method, data):
    """float32/bfloat16/float16 inputs: ``|A − A*| ≤ u·|A*| + 32·u₃₂·κ·S`` per row, with
    ``A*`` the float64 numpy result on the same (rounded) values, ``u`` the output dtype's
    unit roundoff (the one rounding of the float32 result into it), ``u₃₂ = 2⁻²⁴`` (the
    computation is float32), ``S = max(max|A*|, max r − min r)`` the row's scale and ``κ``
    the rule's condition number (Prefix-TEA: Σ_j |w_j| m/n_j ≈ 13, the jackknife's
    amplification of its terms' rounding; 1 otherwise). Measured on 300 random batches
    (scales 1e-30..1e30, offsets to 1e6): at most 10·u₃₂·S, Prefix-TEA 184·u₃₂·S; a
    kernel summing in the rewards' own frame, not a per-row one, is off by up to 1e7·u₃₂·S.
    Never silent zeros: a row whose exact result is non-zero gets a non-zero one."""
    dtype = data.draw(st.sampled_from([torch.float32, torch.bfloat16, torch.float16]),
                      label="dtype")
    unscaled = data.draw(unscaled_rewards())
    options = _options(method, unscaled.shape[1], data)
    conditioning = 1.0
    if method == "prefix_tea":
        m = unscaled.shape[1]
        plan = tailext.prefix_plan(m)
        conditioning = float(np.sum(np.abs(plan.weights) * m / plan.sizes))
    low, high = DECADES[dtype]
    for decade in (low, low // 2, 0, high // 2, high):  # both ends of the range, every time
        tensor = torch.tensor(unscaled * 10.0 ** decade).to(dtype)
        exact_input = tensor.double().numpy()
        if not np.all(np.isfinite(exact_input)):
            continue  # the dtype cannot hold this offset at this scale
        expected = tailext.advantages(exact_input, method, **options)
        if not np.all(np.abs(expected) < torch.finfo(dtype).max):
            continue  # the result does not fit the dtype (an error: see the overflow test)
        got = tt.advantages(tensor, method, **options)
        assert got.dtype == dtype
        got = got.double().numpy()
        scale = np.maximum(np.abs(expected).max(axis=1), np.ptp(exact_input, axis=1))[:, None]
        # the smallest normal (and subnormal spacing) of the output bounds what it resolves
        resolution = torch.finfo(dtype).tiny
        bound = (UNIT[dtype] * np.abs(expected)
                 + 32 * UNIT[torch.float32] * conditioning * scale + resolution)
        assert np.all(np.abs(got - expected) <= bound), (
            decade, np.max(np.abs(got - expected) / bound))
        live = np.abs(expected).max(axis=1) > 1e3 * resolution
        assert np.all(np.abs(got[live]).max(axis=1) > 0), f"silent zeros at 1e{decade}"


def _scale_options(method, options, factor):
    """Options with every absolute term (``eps``, an absolute ``scale_floor``) scaled too."""
    rule = tailext.get_rule(method)
    resolved = {**rule.options, **options}
    scaled = dict(options)
    for name in ("eps", "scale_floor"):
        if resolved.get(name) is not None and name in rule.options:
            scaled[name] = resolved[name] * factor
    return scaled


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("dtype,exponents", [(torch.float64, (-900, -100, 100, 900)),
                                             (torch.float32, (-90, -30, 30, 90))])
def test_power_of_two_scaling_is_exact(method, dtype, exponents):
    """``A(2^j r) = 2^j A(r)`` (scale-equivariant rules) or ``A(r)`` (scale-invariant ones,
    with ``ε`` scaled too) bitwise: the per-row frame makes the computation itself
    invariant, also with masks and for magnitudes near the ends of the dtype's range."""
    rng = np.random.default_rng(5)
    rewards = torch.tensor(rng.normal(size=(6, 20)) + 3.0, dtype=dtype)
    valid = torch.tensor(rng.random((6, 20)) > 0.2)
    options = _options(method, 20)
    options.setdefault("scale_floor", None)
    if "scale_floor" not in tailext.get_rule(method).options:
        options.pop("scale_floor")
    equivariant = "scale_equivariant" in tailext.get_rule(method).properties
    for mask in (None, valid):
        base = tt.advantages(rewards, method, valid=mask, **options)
        for j in exponents:
            factor = 2.0 ** j
            got = tt.advantages(rewards * factor, method, valid=mask,
                                **_scale_options(method, options, factor))
            want = base * factor if equivariant else base
            assert torch.equal(got, want), (j, (got - want).abs().max())


def test_half_precision_overflow_is_an_error_not_an_inf():
    rewards = torch.tensor(np.random.default_rng(0).normal(size=(3, 32)) * 2e3).half()
    with pytest.raises(ValueError, match=r"gave an advantage of magnitude .* in group \d of "
                                         r"`rewards`, outside the range of float16"):
        tt.advantages(rewards, method="chow_bon_rl", seed=0)
    unchecked = tt.advantages(rewards, method="chow_bon_rl", seed=0, check_finite=False)
    assert torch.isinf(unchecked).any()  # documented: visible, never clipped or zeroed
    assert torch.isfinite(tt.advantages(rewards.float(), method="chow_bon_rl", seed=0)).all()


# --- Prefix-TEA's ordering ---------------------------------------------------------------

@FEW
@given(batch=masked_batches(min_m=13, max_m=40), data=st.data())
def test_prefix_random_order_ignores_the_input_order(batch, data):
    """``A(r[:, σ]) = A(r)[:, σ]`` for ``ordering="random"`` under a fixed seed, with ties,
    in numpy and in torch (with masks permuted along); ``"given"`` is the numpy rule."""
    rewards, valid = batch
    m = rewards.shape[1]
    permutation = np.array(data.draw(st.permutations(range(m)), label="permutation"))
    scale = _term_scale("prefix_tea", rewards, valid, {})
    full = tailext.prefix_tea_advantages(rewards, seed=4)
    numpy_shuffled = tailext.prefix_tea_advantages(rewards[:, permutation], seed=4)
    assert np.all(np.abs(numpy_shuffled - full[:, permutation]) <= 1e-12 * scale)
    kwargs = dict(method="prefix_tea", seed=4, check_finite=False)
    masked = tt.advantages(torch.tensor(rewards), valid=torch.tensor(valid), **kwargs)
    shuffled = tt.advantages(torch.tensor(rewards[:, permutation]),
                             valid=torch.tensor(valid[:, permutation]), **kwargs)
    assert np.all(np.abs(shuffled.numpy() - masked.numpy()[:, permutation])
                  <= 1e-12 * scale)


def test_prefix_given_order_depends_on_the_order_and_random_equals_it_rearranged():
    rewards = np.random.default_rng(8).normal(size=(4, 32))
    reverse = slice(None, None, -1)
    given = tailext.prefix_tea_advantages(rewards, ordering="given")
    flipped = tailext.prefix_tea_advantages(rewards[:, reverse], ordering="given")[:, reverse]
    assert np.abs(given - flipped).max() > 1e-3  # the prefixes hold other rollouts
    keys = np.random.default_rng(2).random(rewards.shape)
    expected = np.stack([_prefix_random_by_definition(row, key, {"seed": 2})
                         for row, key in zip(rewards, keys)])
    np.testing.assert_allclose(tailext.prefix_tea_advantages(rewards, seed=2), expected,
                               rtol=0, atol=1e-12)
    torch_result = tt.advantages(torch.tensor(rewards), "prefix_tea", seed=2).numpy()
    np.testing.assert_allclose(torch_result, expected, rtol=0, atol=1e-12)


def test_prefix_seed_int_repeats_generator_advances():
    rewards = np.random.default_rng(9).normal(size=(2, 32))
    first = tailext.prefix_tea_advantages(rewards, seed=5)
    assert np.array_equal(first, tailext.prefix_tea_advantages(rewards, seed=5))
    generator = np.random.default_rng(5)
    drawn = [tailext.prefix_tea_advantages(rewards, seed=generator) for _ in range(2)]
    assert np.array_equal(drawn[0], first) and not np.array_equal(drawn[1], first)


def test_prefix_ties_get_one_advantage():
    rewards = np.array([[0.0, 1.0, 1.0, 2.0, 2.0, 2.0, 3.0, 0.5, 0.25, 1.5, 2.5, 3.5, 4.0,
                         1.0, 0.0, 5.0]])
    for result in (tailext.prefix_tea_advantages(rewards, seed=1),
                   tt.advantages(torch.tensor(rewards), "prefix_tea", seed=1).numpy()):
        for value in (0.0, 1.0, 2.0):
            tied = result[0, rewards[0] == value]
            assert np.ptp(tied) <= 1e-12 * np.abs(result).max()


@pytest.mark.parametrize("options,error,match", [
    ({"ordering": "rand"}, ValueError, r"`ordering` must be one of 'random', 'given', got "
                                       r"'rand'. Did you mean 'random'\?"),
    ({"ordering": 1}, TypeError, r"`ordering` must be one of 'random', 'given', got 1"),
    ({"seed": -1}, ValueError, r"`seed` must be a non-negative integer, got -1"),
    ({"seed": "abc"}, TypeError, r"`seed` must be None, a non-negative integer or a "
                                 r"numpy.random.Generator, got 'abc'"),
])
def test_prefix_ordering_options_are_validated(options, error, match):
    for call in (lambda: tailext.prefix_tea_advantages(np.zeros((1, 32)), **options),
                 lambda: tt.advantages(torch.zeros(1, 32), "prefix_tea", **options)):
        with pytest.raises(error, match=match):
            call()


# --- no device sync ------------------------------------------------------------------------

#: aten ops whose result shape or value the host must read from the device.
SYNCING_OPS = {"aten::_local_scalar_dense", "aten::nonzero", "aten::nonzero_static",
               "aten::masked_select", "aten::_unique", "aten::_unique2", "aten::unique_dim",
               "aten::unique_consecutive", "aten::unique_dim_consecutive",
               "aten::repeat_interleave", "aten::_assert_async"}


@contextlib.contextmanager
def no_device_reads(monkeypatch):
    """Fail on anything that would synchronize a CUDA device: the ops of
    :data:`SYNCING_OPS`, boolean-mask indexing, and reading a tensor from Python
    (``item``, ``tolist``, ``bool``/``int``/``float``/``index``, ``numpy``, ``cpu``).
    Tensors are on the CPU here, so this checks the code path, not a device."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Guard(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            name = func._schema.name
            indices = args[1] if name in ("aten::index", "aten::index_put") else ()
            if name in SYNCING_OPS or any(
                    isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in indices):
                raise AssertionError(f"{name} reads the device")
            return func(*args, **(kwargs or {}))

    def refuse(name):
        def method(*args, **kwargs):
            raise AssertionError(f"Tensor.{name} reads the device")
        return method

    for name in ("item", "tolist", "__bool__", "__int__", "__float__", "__index__", "numpy",
                 "cpu"):
        monkeypatch.setattr(torch.Tensor, name, refuse(name))
    with Guard():
        yield
    monkeypatch.undo()


@pytest.mark.parametrize("method", METHODS)
def test_no_device_sync_without_check_finite(method, monkeypatch):
    rng = np.random.default_rng(1)
    rewards = torch.tensor(rng.normal(size=(6, 24)))
    rewards[0, 3] = float("nan")  # non-finite: an invalid rollout, found without a sync
    valid = torch.tensor(rng.random((6, 24)) > 0.3)
    flat = torch.tensor(rng.normal(size=60))
    ids = np.repeat([0, 1, 2], [16, 20, 24])  # host ids: grouped on the host
    options = _options(method, 24)
    with no_device_reads(monkeypatch):
        for mask in (None, valid):
            tt.advantages(rewards, method, valid=mask, check_finite=False, return_info=True,
                          **options)
        tt.advantages_from_groups(flat, ids, method, check_finite=False, **options)


def test_sync_guard_catches_a_sync(monkeypatch):
    """The guard is not vacuous: the default check_finite=True reads the device once."""
    with pytest.raises(AssertionError, match="reads the device"):
        with no_device_reads(monkeypatch):
            tt.advantages(torch.zeros(2, 8), "grpo")


def test_an_advantage_beyond_the_dtype_is_an_error_or_counted():
    # float16 rewards spanning 1.2e5: the best rollout's TEA advantage (≈ 9e4) does not fit.
    rewards = torch.linspace(-6e4, 6e4, 16).to(torch.float16)[None]
    with pytest.raises(ValueError, match=r"outside the range of float16"):
        tt.advantages(rewards, method="tea")
    result = tt.advantages(rewards, method="tea", check_finite=False, return_info=True)
    assert int(result.nonfinite) == int((~torch.isfinite(result.advantages)).sum()) > 0
    assert int(tt.advantages(rewards.float(), method="tea", return_info=True).nonfinite) == 0
