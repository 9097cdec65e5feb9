"""tailext.torch: torch results == numpy results for every rule, layouts, loss, CUDA."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

torch = pytest.importorskip("torch")

import tailext  # noqa: E402
import tailext.torch as tt  # noqa: E402
from reward_strategies import ALL_MAGNITUDES, reward_batches  # noqa: E402

METHODS = tailext.available_methods()
NEEDS_K = {"bon_mean", "maxk_loo1"}
SEEDED = {m for m in METHODS if "seed" in tailext.get_rule(m).options}


def _options(method, m, data=None):
    options = {}
    if method in SEEDED:  # numpy and torch draw the same split/order for the same seed
        options["seed"] = 11
    if method in NEEDS_K and data is not None:
        options["k"] = data.draw(st.integers(2, m))
    return options


def float_batches():
    """Groups large enough for the tail rules (m ≥ 8)."""
    return reward_batches(min_m=8, max_m=48, max_groups=4, magnitudes=ALL_MAGNITUDES)


def assert_matches_numpy(got, expected, rewards, rtol, conditioning, term_scale=0.0):
    """|got − expected| ≤ rtol · conditioning · size · max|r| / spread, per row.

    Every rule depends on the rewards through differences, so an input ulp of ``max|r|``
    moves ``A`` by about ``size · ulp · max|r| / spread`` (times a modest conditioning
    factor), with ``size = max(max|A|, term_scale · spread)`` the magnitude of the terms
    that make up ``A``; rows with zero spread must agree exactly."""
    spread = np.ptp(rewards, axis=1, keepdims=True)
    magnitude = np.abs(rewards).max(axis=1, keepdims=True)
    size = np.maximum(np.abs(expected).max(axis=1, keepdims=True), term_scale * spread)
    with np.errstate(divide="ignore", invalid="ignore"):
        bound = np.where(spread > 0, rtol * conditioning * size * magnitude / spread, 0.0)
    assert np.all(np.abs(got - expected) <= bound), np.abs(got - expected).max()


def _numpy_or_error(rewards, method, options):
    try:
        return tailext.advantages(rewards, method=method, **options), None
    except ValueError as error:
        return None, str(error)


def _check_against_numpy(method, rewards, dtype, data, rtol, conditioning):
    options = _options(method, rewards.shape[1], data)
    tensor = torch.tensor(rewards, dtype=dtype)
    exact = tensor.double().numpy()  # the values torch actually sees
    expected, message = _numpy_or_error(exact, method, options)
    if message is not None:  # validation mirrors the numpy side
        with pytest.raises(ValueError) as caught:
            tt.advantages(tensor, method=method, small_groups="raise", **options)
        assert str(caught.value) == message
        return
    got = tt.advantages(tensor, method=method, **options)
    assert got.dtype == dtype and got.shape == tensor.shape
    term_scale = 0.0
    if method in ("tea", "tea_raw", "prefix_tea"):
        # ψ = (r − h)/β · [1 + κ/(2s)(r + h − 2μ)]: the bracket cancels near ψ's zero, so
        # errors are relative to the linear term (r − h)/β ≤ spread/β, not to max|A|.
        term_scale = 1.0 / 0.25
    if method == "prefix_tea":  # the jackknife weights (±4.4 …) amplify rounding errors
        m = rewards.shape[1]
        plan = tailext.prefix_plan(m)
        conditioning *= float(np.sum(np.abs(plan.weights) * m / plan.sizes))
    assert_matches_numpy(got.double().numpy(), expected, exact, rtol, conditioning,
                         term_scale)


# A third of the profile's examples per rule (at least 20) keeps the default run short while
# the "thorough" profile still scales it up. Lower precisions: tests/test_torch_rules.py.
FEW = settings(max_examples=max(20, settings.default.max_examples // 3))


@pytest.mark.parametrize("method", METHODS)
@FEW
@given(rewards=float_batches(), data=st.data())
def test_float64_matches_numpy(method, rewards, data):
    _check_against_numpy(method, rewards, torch.float64, data, 1e-12, 8)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32,
                                   torch.float64])
def test_dtype_preserved_no_graph_input_untouched(method, dtype):
    rewards = torch.randn(3, 32, generator=torch.Generator().manual_seed(0)).to(dtype)
    rewards.requires_grad_(True)
    before = rewards.detach().clone()
    options = _options(method, 32)
    got = tt.advantages(rewards, method=method, **options)
    assert got.dtype == dtype and got.shape == (3, 32)
    assert not got.requires_grad and got.grad_fn is None
    assert torch.equal(rewards.detach(), before)
    expected = tailext.advantages(before.double().numpy(), method=method, **options)
    if dtype in (torch.float16, torch.bfloat16):  # computed in float32, rounded on return
        np.testing.assert_allclose(got.double().numpy(), expected, rtol=2e-2,
                                   atol=2e-2 * np.abs(expected).max())
    one = tt.advantages(rewards[1], method=method, **options)
    assert one.shape == (32,) and one.dtype == dtype


def _interleaved(rewards):
    """Flat layout of ``[B, m]`` with groups interleaved (sample ``j·B + b`` is ``(b, j)``)."""
    n_groups, m = rewards.shape
    return rewards.T.reshape(-1), np.tile(np.arange(n_groups), m)


@pytest.mark.parametrize("method", METHODS)
def test_flat_layout_equals_batched_for_equal_groups(method):
    rewards = np.random.default_rng(4).normal(size=(5, 24))
    flat, ids = _interleaved(rewards)
    options = _options(method, 24)
    expected = tt.advantages(torch.tensor(rewards), method=method, **options).numpy()
    string_ids = np.array([f"uid-{i}" for i in ids], dtype=object)
    for group_ids in (torch.tensor(ids), string_ids, list(ids)):
        got = tt.advantages_from_groups(torch.tensor(flat), group_ids, method=method,
                                        **options).numpy()
        np.testing.assert_allclose(got.reshape(24, 5).T, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("method", sorted(set(METHODS) - {"chow_bon_rl"}))
def test_unequal_groups_match_per_group_numpy(method):
    """Each group equals the numpy rule on that group alone (chow_bon_rl draws its splits
    per block from one Generator, so its groups have no per-group numpy counterpart; so
    does Prefix-TEA's random order, checked here with ``ordering="given"``)."""
    rng = np.random.default_rng(5)
    sizes = [24, 40, 24, 32, 40]
    ids = rng.permutation(np.repeat(np.arange(len(sizes)), sizes))  # groups interleaved
    scores = rng.normal(size=len(ids))
    options = {"ordering": "given"} if method == "prefix_tea" else _options(method, 24)
    got = tt.advantages_from_groups(torch.tensor(scores), ids, method=method,
                                    **options).numpy()
    for group in range(len(sizes)):
        members = np.flatnonzero(ids == group)  # ascending: the order in the flat batch
        expected = tailext.advantages(scores[members], method=method, **options)
        np.testing.assert_allclose(got[members], expected, rtol=0,
                                   atol=1e-12 * max(1.0, np.abs(expected).max()))


def test_chow_flat_layout_is_reproducible_and_follows_the_formula_support():
    scores = torch.tensor(np.random.default_rng(6).normal(size=60))
    ids = np.repeat([0, 1, 2], [16, 20, 24])
    first = tt.advantages_from_groups(scores, ids, method="chow_bon_rl", seed=3)
    assert torch.equal(first, tt.advantages_from_groups(scores, ids, method="chow_bon_rl",
                                                        seed=3))
    for group in range(3):  # y* and the Cor rewards below it: nonzero only there
        members = torch.tensor(np.flatnonzero(ids == group))
        assert int((first[members] != 0).sum()) >= 1


def test_group_too_small_names_the_group():
    scores = torch.tensor([1.0, 2.0, 3.0, 4.0])
    ids = np.array(["a", "a", "a", "lonely"], dtype=object)
    with pytest.raises(ValueError, match=r"groups of size 1 \(e.g. group id 'lonely'\): "
                                         r"each group has 1 valid rollout\(s\), too few for "
                                         r"method 'rloo', which needs at least 2"):
        tt.advantages_from_groups(scores, ids, method="rloo", small_groups="raise")
    with pytest.raises(ValueError, match=r"groups of size 1 \(e.g. group id 7\)"):
        tt.advantages_from_groups(scores, torch.tensor([3, 3, 3, 7]), method="rloo",
                                  small_groups="raise")


@pytest.mark.parametrize("call,error,match", [
    (lambda: tt.advantages(np.zeros((2, 8))), TypeError, r"must be a torch.Tensor"),
    (lambda: tt.advantages(torch.zeros(2, 8, dtype=torch.int64)), TypeError,
     r"must be a floating-point tensor"),
    (lambda: tt.advantages(torch.zeros(2, 3, 8)), ValueError, r"1-D .* or 2-D \[B, m\]"),
    (lambda: tt.advantages(torch.zeros(0, 8)), ValueError, r"must not be empty"),
    (lambda: tt.advantages(torch.zeros(2, 8), method="grpo", k=3), TypeError,
     r"unknown option\(s\) 'k'; accepted options: ddof, eps"),
    (lambda: tt.advantages(torch.zeros(2, 8), method="nope"), ValueError,
     r"unknown advantage method 'nope'"),
    (lambda: tt.advantages(torch.zeros(2, 8), check_finite=1), TypeError,
     r"`check_finite` must be True or False, got 1"),
    (lambda: tt.advantages(torch.zeros(2, 8), method="bon_mean", k=9, small_groups="raise"),
     ValueError, r"group 0 of `rewards` has 8 valid rollout\(s\), too few .* at least 9"),
    (lambda: tt.advantages(torch.zeros(2, 4), method="tea", small_groups="raise"), ValueError,
     r"too few for method 'tea', which needs at least 5"),
    (lambda: tt.advantages(torch.zeros(2, 4), small_groups="zero!"), ValueError,
     r"`small_groups` must be one of 'raise', 'zero', got 'zero!'. Did you mean 'zero'\?"),
    (lambda: tt.advantages(torch.zeros(2, 4), valid=torch.ones(2, 4)), TypeError,
     r"`valid` must be a boolean torch.Tensor"),
    (lambda: tt.advantages(torch.zeros(2, 4), valid=torch.ones(2, 3, dtype=torch.bool)),
     ValueError, r"`valid` must have the shape of `rewards` \(2, 4\), got \(2, 3\)"),
    (lambda: tt.advantages_from_groups(torch.zeros(2, 4), [0, 1]), ValueError,
     r"`rewards` must be a 1-D torch.Tensor"),
    (lambda: tt.advantages_from_groups(torch.zeros(2), [0.0, float("nan")]), ValueError,
     r"`group_ids` must not contain NaN"),
    (lambda: tt.advantages_from_groups(torch.zeros(2), torch.tensor([0.0, float("nan")])),
     ValueError, r"`group_ids` must not contain NaN"),
    (lambda: tt.advantages_from_groups(torch.zeros(4), [0, 1]), ValueError,
     r"`group_ids` must have shape \(4,\)"),
    (lambda: tt.advantages_from_groups(torch.zeros(4), torch.zeros(3)), ValueError,
     r"`group_ids` must have shape \(4,\)"),
])
def test_bad_input_raises_clear_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_non_finite_rewards_name_the_row():
    rewards = torch.zeros(3, 8)
    rewards[2, 5] = float("inf")
    with pytest.raises(ValueError, match=r"non-finite reward inf in row 2 of `rewards` "
                                         r"\(column 5\)"):
        tt.advantages(rewards)
    with pytest.raises(ValueError, match=r"non-finite reward nan in rewards\[1\]"):
        tt.advantages_from_groups(torch.tensor([0.0, float("nan")]), [0, 0], method="grpo")


# --- loss helper --------------------------------------------------------------------------

def test_policy_loss_gradient_is_token_mean_then_response_mean():
    gen = torch.Generator().manual_seed(0)
    logprobs = torch.randn(4, 6, generator=gen, dtype=torch.float64, requires_grad=True)
    mask = torch.tensor([[1, 1, 1, 0, 0, 0], [1] * 6, [1, 0, 0, 0, 0, 0], [0] * 6])
    adv = torch.tensor([1.0, -2.0, 0.5, 3.0], dtype=torch.float64, requires_grad=True)
    loss = tt.grouped_policy_loss(logprobs, mask, adv)
    loss.backward()
    tokens = mask.sum(dim=1).clamp(min=1).double()
    expected = -adv.detach()[:, None] * mask / tokens[:, None] / 4
    torch.testing.assert_close(logprobs.grad, expected, rtol=0, atol=1e-15)
    assert adv.grad is None  # advantages are stop-gradient weights
    value = -(adv.detach() * (logprobs.detach() * mask).sum(1) / tokens).mean()
    torch.testing.assert_close(loss.detach(), value, rtol=0, atol=1e-14)


def test_policy_loss_k3_penalty():
    logprobs = torch.tensor([[-1.0, -2.0], [-0.5, -0.1]], dtype=torch.float64,
                            requires_grad=True)
    ref = torch.tensor([[-1.5, -1.0], [-0.5, -3.0]], dtype=torch.float64)
    mask = torch.ones(2, 2)
    zero_adv = torch.zeros(2, dtype=torch.float64)
    loss = tt.grouped_policy_loss(logprobs, mask, zero_adv, ref_logprobs=ref, kl_coef=0.3)
    rho = ref - logprobs.detach()
    expected = 0.3 * (torch.exp(rho) - rho - 1).mean(dim=1).mean()
    torch.testing.assert_close(loss.detach(), expected, rtol=0, atol=1e-15)
    loss.backward()  # d k3 / d logπ = 1 − exp(ρ)
    torch.testing.assert_close(logprobs.grad, 0.3 * (1 - torch.exp(rho)) / 4, rtol=0,
                               atol=1e-15)
    same = tt.grouped_policy_loss(logprobs, mask, zero_adv, ref_logprobs=logprobs.detach(),
                                  kl_coef=1.0)
    assert float(same) == 0.0


@pytest.mark.parametrize("kwargs,match", [
    ({"kl_coef": 0.1}, r"`kl_coef` > 0 needs `ref_logprobs`"),
    ({"kl_coef": -1.0}, r"`kl_coef` must be a finite number >= 0.0, got -1.0"),
    ({"mask": torch.ones(2, 4)}, r"`mask` must be a tensor of shape \(2, 3\)"),
    ({"advantages": torch.ones(3)}, r"`advantages` must be a tensor of shape \(2,\)"),
    ({"ref_logprobs": torch.ones(2, 4)}, r"`ref_logprobs` must be None or a tensor"),
    ({"logprobs": torch.ones(2)}, r"`logprobs` must be a 2-D torch.Tensor"),
])
def test_policy_loss_bad_input(kwargs, match):
    arguments = {"logprobs": torch.zeros(2, 3), "mask": torch.ones(2, 3),
                 "advantages": torch.zeros(2)}
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=match):
        tt.grouped_policy_loss(**arguments)


# --- CUDA ---------------------------------------------------------------------------------

@contextlib.contextmanager
def cuda_syncs_are_errors():
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        yield
    finally:
        torch.cuda.set_sync_debug_mode("default")


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device available")
@pytest.mark.parametrize("method", METHODS)
def test_cuda_matches_numpy_without_device_sync(method):
    """Every rule on CUDA with check_finite=False: no device sync (an error under the sync
    debug mode), with and without ``valid``, and from host group ids; results equal the
    CPU ones (float64, 1e-12 of the row scale) and numpy's."""
    rng = np.random.default_rng(8)
    rewards = rng.normal(size=(64, 32))
    valid = rng.random((64, 32)) > 0.25
    options = _options(method, 32)
    expected = tailext.advantages(rewards, method=method, **options)
    device_rewards = torch.tensor(rewards, device="cuda")
    device_valid = torch.tensor(valid, device="cuda")
    flat, ids = _interleaved(rewards)
    device_flat = torch.tensor(flat, device="cuda")

    def calls():
        return (tt.advantages(device_rewards, method=method, check_finite=False, **options),
                tt.advantages(device_rewards, method=method, valid=device_valid,
                              check_finite=False, return_info=True, **options),
                tt.advantages_from_groups(device_flat, ids, method=method,
                                          check_finite=False, **options))

    calls()  # warm-up: kernels load, caching allocators fill
    with cuda_syncs_are_errors():
        full, masked, grouped = calls()
    assert full.device.type == "cuda" and full.dtype == torch.float64
    assert_matches_numpy(full.cpu().numpy(), expected, rewards, 1e-12, 8)
    cpu_masked = tt.advantages(torch.tensor(rewards), method=method, valid=torch.tensor(valid),
                               **options)
    scale = np.abs(cpu_masked.numpy()).max() + 1.0
    np.testing.assert_allclose(masked.advantages.cpu().numpy(), cpu_masked.numpy(), rtol=0,
                               atol=1e-12 * scale)
    assert int(masked.invalid) == int((~valid).sum())
    np.testing.assert_allclose(grouped.cpu().numpy().reshape(32, 64).T, full.cpu().numpy(),
                               rtol=0, atol=1e-12 * scale)
    single = tt.advantages(device_rewards.float(), method=method, **options)
    assert single.dtype == torch.float32 and single.device.type == "cuda"
