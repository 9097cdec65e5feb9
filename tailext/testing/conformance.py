"""Property-based conformance checks for advantage rules: :func:`check_rule`.

A property is checked as a hypothesis test: rewards are drawn from a strategy (by default
:func:`tailext.testing.strategies.reward_batches`), the rule is applied, and a violation is
shrunk by hypothesis to a minimal falsifying example, which the report keeps.
"""

from __future__ import annotations

import inspect
import warnings
from dataclasses import dataclass, field, replace
from typing import Callable, Mapping

import numpy as np
from hypothesis import HealthCheck, Phase, Verbosity, given, reject, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument, Unsatisfiable

from .._arguments import did_you_mean, integer_iv, real_iv
from ..rules import PROPERTIES, AdvantageRule, DiscreteRewardWarning, get_rule
from .strategies import reward_batches

__all__ = ["ALWAYS_CHECKED", "CHECKABLE", "DEFAULT_RTOL", "PropertyResult",
           "ConformanceReport", "check_rule"]

#: Checked for every rule, whatever it claims.
ALWAYS_CHECKED = ("finite", "shape_dtype", "no_input_mutation")
#: Every property :func:`check_rule` can check: the claimable :data:`tailext.rules.PROPERTIES`,
#: the always-checked ones, and ``batch_independent`` (checked with ``deterministic`` for a
#: rule without a ``seed`` option: the results of a random rule cannot be compared between
#: calls, and a seeded one shares its random stream between the rows of a batch).
CHECKABLE = tuple(sorted(PROPERTIES)) + ALWAYS_CHECKED + ("batch_independent",)
#: Default relative tolerance of float comparisons (see :func:`check_rule`, Notes).
DEFAULT_RTOL = 1e-8
_EPS = float(np.finfo(np.float64).eps)


class _Violation(AssertionError):
    """A property failed on ``example`` (raised inside the hypothesis test)."""

    def __init__(self, message, example):
        super().__init__(message)
        self.example = example


class _OutsideDomain(BaseException):
    """The rule rejected every input so far: abort the hypothesis run early.

    A ``BaseException`` so that hypothesis propagates it instead of shrinking it.
    """


#: Consecutive rejected draws, with none accepted, after which a rule's domain is deemed
#: not covered by the strategy.
_MAX_INITIAL_REJECTIONS = 100


@dataclass(frozen=True)
class PropertyResult:
    """Outcome of checking one property.

    Attributes
    ----------
    name : str
        The property.
    holds : bool or None
        ``True`` if no violation was found, ``False`` if one was, ``None`` if no valid input
        could be generated (the rule rejected every draw with a ``ValueError``).
    message : str
        What was violated (on the minimal example), or why the check could not run.
    example : dict or None
        The minimal falsifying example: ``"rewards"`` plus the property's own draws
        (``"shift"``, ``"scale"``, ``"permutation"``, ``"row"``).
    examples : int
        Inputs the rule accepted.
    rejected : int
        Inputs the rule rejected with a ``ValueError`` (outside its domain, e.g. ``m`` too
        small for its tail fit); ``rejection`` is the first such message.
    rejection : str
    """

    name: str
    holds: bool | None
    message: str = ""
    example: dict | None = None
    examples: int = 0
    rejected: int = 0
    rejection: str = ""


def _shown(value, limit=200):
    """Exact values of a small array (to paste into a test), a summary of a large one."""
    array = np.asarray(value)
    if array.size <= limit:
        return array.tolist()
    return f"<{array.dtype} array of shape {array.shape}: " + np.array2string(
        array, threshold=limit, edgeitems=3) + ">"


@dataclass(frozen=True)
class ConformanceReport:
    """Results of :func:`check_rule`, one :class:`PropertyResult` per checked property.

    Attributes
    ----------
    rule : str
        The rule's name.
    results : Mapping[str, PropertyResult]
    claimed : frozenset of str
        Properties the rule claims under the options checked (its registration's, or
        those derived for a composed rule; empty for a plain callable).
    """

    rule: str
    results: Mapping[str, PropertyResult]
    claimed: frozenset = field(default_factory=frozenset)

    def __getitem__(self, name) -> PropertyResult:
        return self.results[name]

    @property
    def ok(self) -> bool:
        """Whether every checked property holds (and could be checked)."""
        return all(result.holds for result in self.results.values())

    @property
    def failures(self) -> dict:
        """The results whose property does not hold or could not be checked."""
        return {name: r for name, r in self.results.items() if not r.holds}

    def __str__(self):
        lines = [f"conformance of {self.rule!r}:"]
        for name, result in self.results.items():
            status = {True: "holds", False: "FAILS", None: "UNCHECKED"}[result.holds]
            line = f"  {name:<24} {status:<9} ({result.examples} inputs"
            line += f", {result.rejected} rejected)" if result.rejected else ")"
            if result.holds is not True:
                line += f"\n      {result.message}"
                if result.example is not None:
                    shown = {k: _shown(v) for k, v in result.example.items()}
                    line += f"\n      minimal example: {shown}"
            lines.append(line)
        return "\n".join(lines)

    def raise_on_failure(self):
        """Raise ``AssertionError`` with the report if any property fails or is unchecked."""
        if not self.ok:
            raise AssertionError(str(self))
        return self


@dataclass
class _Subject:
    """The rule under test with its options and comparison settings."""

    function: Callable
    options: dict
    rtol: float
    atol: float
    dtype: object
    one_group: bool
    examples: int = 0
    rejected: int = 0
    rejection: str = ""

    def __call__(self, rewards):
        # Drawn integer rewards tie on purpose; the tail rules' warning about it is noise here.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DiscreteRewardWarning)
            return self.function(rewards, **self.options)

    def baseline(self, rewards):
        """Advantages on a drawn input; a ``ValueError`` rejects the input (out of domain)."""
        try:
            result = self(rewards)
        except ValueError as error:
            self.rejected += 1
            self.rejection = self.rejection or f"{type(error).__name__}: {error}"
            if not self.examples and self.rejected >= _MAX_INITIAL_REJECTIONS:
                raise _OutsideDomain from error
            reject()
        except Exception as error:  # noqa: BLE001 - any other error is a finding
            raise _Violation(f"raised {type(error).__name__}: {error}",
                             {"rewards": rewards}) from error
        self.examples += 1
        return np.asarray(result)

    def transformed(self, rewards, example):
        """Advantages on a transformed input; any error there is a violation."""
        try:
            return np.asarray(self(rewards))
        except Exception as error:  # noqa: BLE001
            raise _Violation(f"accepted the input but raised {type(error).__name__} on the "
                             f"transformed input: {error}", example) from error

    def tolerance(self, advantages, rewards):
        """Per-row ``rtol · max_i |A_i| + m ε max_i |r_i| + atol`` (see check_rule, Notes).

        ``advantages`` and ``rewards`` are sequences of ``[B, m]`` arrays; the maxima run
        over all of them.
        """
        size = np.max([np.max(np.abs(a), axis=-1) for a in advantages], axis=0)
        magnitude = np.max([np.max(np.abs(np.asarray(r, dtype=np.float64)), axis=-1)
                            for r in rewards], axis=0)
        return (self.rtol * size + _EPS * np.shape(rewards[0])[-1] * magnitude
                + self.atol)

    def compare(self, actual, expected, what, example, rewards=None):
        """Raise unless every row agrees within :meth:`tolerance`.

        ``rewards``: the inputs behind the compared rows (default ``example["rewards"]``).
        """
        actual = np.asarray(actual, dtype=np.float64)
        expected = np.asarray(expected, dtype=np.float64)
        if actual.shape != expected.shape:
            raise _Violation(f"{what}: shape {actual.shape} != {expected.shape}", example)
        error = np.max(np.abs(actual - expected), axis=-1)
        tol = self.tolerance((actual, expected),
                             (example["rewards"],) if rewards is None else rewards)
        bad = np.flatnonzero(~(error <= tol))
        if bad.size:
            row = int(bad[0])
            raise _Violation(f"{what}: row {row} differs by {error[row]:.3g} > tolerance "
                             f"{tol[row]:.3g}", example)


def _same_order(before, after):
    """Whether each row of ``after`` has the same ordering and ties as ``before``.

    A rounded shift or scale can merge two nearly equal rewards into a tie (or split none);
    such draws test rounding, not the rule, and are rejected.
    """
    order = np.argsort(before, axis=-1, kind="stable")
    b = np.take_along_axis(np.asarray(before, dtype=np.float64), order, axis=-1)
    a = np.take_along_axis(after, order, axis=-1)
    return (np.all(np.isfinite(a)) and np.all(np.diff(a, axis=-1) >= 0)
            and np.array_equal(np.diff(b, axis=-1) == 0, np.diff(a, axis=-1) == 0))


def _power_of_two_below(values):
    """``2^floor(log2 v)`` elementwise, ``1`` where ``v == 0``."""
    values = np.where(values > 0, values, 1.0)
    return np.exp2(np.floor(np.log2(values)))


# --- the checks: each gets the subject, one drawn reward batch and st.data() ----------------

def _check_finite(subject, rewards, data):
    advantages = subject.baseline(rewards)
    if not np.all(np.isfinite(advantages)):
        index = tuple(int(i) for i in np.argwhere(~np.isfinite(advantages))[0])
        raise _Violation(f"non-finite advantage {advantages[index]} at {index}",
                         {"rewards": rewards})


def _check_shape_dtype(subject, rewards, data):
    advantages = subject.baseline(rewards)
    example = {"rewards": rewards}
    if advantages.shape != rewards.shape:
        raise _Violation(f"output shape {advantages.shape} != input shape {rewards.shape}",
                         example)
    if subject.dtype is not None and advantages.dtype != subject.dtype:
        raise _Violation(f"output dtype {advantages.dtype} != {np.dtype(subject.dtype)} "
                         f"(input {rewards.dtype})", example)
    if subject.one_group:  # registered rules also take one group as a 1-D array
        single = subject.transformed(rewards[0], example)
        if single.shape != rewards.shape[1:]:
            raise _Violation(f"one group of shape {rewards.shape[1:]} gave shape "
                             f"{single.shape}", example)
        subject.compare(single[None], advantages[:1], "1-D group vs row 0 of the batch",
                        example, (rewards[:1],))


def _check_no_input_mutation(subject, rewards, data):
    original = rewards.copy()
    subject.baseline(rewards)
    if not np.array_equal(rewards, original):
        changed = tuple(int(i) for i in np.argwhere(rewards != original)[0])
        raise _Violation(f"the rule modified its input in place (first change at {changed}: "
                         f"{original[changed]} -> {rewards[changed]})", {"rewards": original})


def _check_deterministic(subject, rewards, data):
    first = subject.baseline(rewards.copy())
    second = subject.transformed(rewards.copy(), {"rewards": rewards})
    if not np.array_equal(first, second):
        subject.compare(second, first, "two calls on the same input", {"rewards": rewards})
        raise _Violation("two calls on the same input differ (within tolerance, not "
                         "bitwise)", {"rewards": rewards})


def _check_batch_independent(subject, rewards, data):
    advantages = subject.baseline(rewards)
    row = data.draw(st.integers(0, rewards.shape[0] - 1), label="row")
    example = {"rewards": rewards, "row": row}
    alone = subject.transformed(rewards[row:row + 1], example)
    subject.compare(alone, advantages[row:row + 1],
                    f"row {row} computed alone vs inside the batch",
                    example, (rewards[row:row + 1],))
    reversed_rows = subject.transformed(rewards[::-1], example)
    subject.compare(reversed_rows[::-1], advantages, "batch with its rows reversed", example)


def _check_zero_sum(subject, rewards, data):
    advantages = subject.baseline(rewards)
    total = np.abs(np.sum(advantages, axis=-1, dtype=np.float64))
    tol = subject.tolerance((advantages,), (rewards,)) * advantages.shape[-1]
    bad = np.flatnonzero(~(total <= tol))
    if bad.size:
        row = int(bad[0])
        raise _Violation(f"row {row} sums to {total[row]:.3g} > tolerance {tol[row]:.3g}",
                         {"rewards": rewards})


def _check_shift_invariant(subject, rewards, data):
    advantages = subject.baseline(rewards)
    r = rewards.astype(np.float64)
    spread = np.ptp(r, axis=-1)
    unit = _power_of_two_below(np.where(spread > 0, spread, np.max(np.abs(r), axis=-1)))
    steps = data.draw(st.lists(st.integers(-8, 8), min_size=len(r), max_size=len(r)),
                      label="shift in units of the row's spread")
    shift = np.asarray(steps, dtype=np.float64) * unit
    shifted = r + shift[:, None]
    if not _same_order(r, shifted):
        reject()
    example = {"rewards": rewards, "shift": shift}
    subject.compare(subject.transformed(shifted, example), advantages, "A(r + c) vs A(r)",
                    example, (rewards, shifted))


_SCALES = st.one_of(st.integers(-30, 30).map(lambda e: 2.0 ** e),
                    st.floats(1e-3, 1e3, allow_subnormal=False))


def _scaled(subject, rewards, data):
    advantages = subject.baseline(rewards)
    scale = data.draw(_SCALES, label="scale")
    scaled = rewards.astype(np.float64) * scale
    if not _same_order(rewards, scaled):
        reject()
    example = {"rewards": rewards, "scale": scale}
    return advantages, scale, subject.transformed(scaled, example), example


def _check_scale_equivariant(subject, rewards, data):
    advantages, scale, scaled, example = _scaled(subject, rewards, data)
    subject.compare(np.asarray(scaled, dtype=np.float64) / scale, advantages,
                    "A(a r) / a vs A(r)", example)


def _check_scale_invariant(subject, rewards, data):
    advantages, scale, scaled, example = _scaled(subject, rewards, data)
    subject.compare(scaled, advantages, "A(a r) vs A(r)", example)


def _check_permutation_equivariant(subject, rewards, data):
    advantages = subject.baseline(rewards)
    permutation = np.array(data.draw(st.permutations(range(rewards.shape[1])),
                                     label="permutation"), dtype=np.int64)
    example = {"rewards": rewards, "permutation": permutation}
    permuted = subject.transformed(rewards[:, permutation], example)
    subject.compare(permuted, advantages[:, permutation], "A(r[:, π]) vs A(r)[:, π]",
                    example)


def _check_monotone(subject, rewards, data):
    advantages = np.asarray(subject.baseline(rewards), dtype=np.float64)
    order = np.argsort(rewards, axis=-1, kind="stable")
    r = np.take_along_axis(rewards, order, axis=-1)
    a = np.take_along_axis(advantages, order, axis=-1)
    step = np.diff(a, axis=-1)
    tol = subject.tolerance((advantages,), (rewards,))[:, None]
    tied = np.diff(r, axis=-1) == 0
    bad = np.argwhere(np.where(tied, np.abs(step) > tol, step < -tol))
    if bad.size:
        row, j = (int(i) for i in bad[0])
        i_low, i_high = int(order[row, j]), int(order[row, j + 1])
        relation = "==" if tied[row, j] else "<"
        raise _Violation(f"row {row}: r[{i_low}] {relation} r[{i_high}] but A[{i_low}] = "
                         f"{advantages[row, i_low]:.6g}, A[{i_high}] = "
                         f"{advantages[row, i_high]:.6g}", {"rewards": rewards})


_CHECKS = {
    "finite": _check_finite,
    "shape_dtype": _check_shape_dtype,
    "no_input_mutation": _check_no_input_mutation,
    "deterministic": _check_deterministic,
    "batch_independent": _check_batch_independent,
    "zero_sum": _check_zero_sum,
    "shift_invariant": _check_shift_invariant,
    "scale_equivariant": _check_scale_equivariant,
    "scale_invariant": _check_scale_invariant,
    "permutation_equivariant": _check_permutation_equivariant,
    "monotone": _check_monotone,
}
assert set(_CHECKS) == set(CHECKABLE)


def _property_test(check, subject, strategy, config, seed):
    """The hypothesis test running ``check`` on drawn rewards (seeded unless ``None``)."""
    @config
    @given(strategy, st.data())
    def run(rewards, data):
        check(subject, np.ascontiguousarray(rewards), data)

    return run if seed is None else hypothesis_seed(seed)(run)


def _resolve_rule(rule):
    """``(name, function, options_accepted, claimed, registered)`` of a rule argument."""
    if isinstance(rule, str):
        rule = get_rule(rule)
    if isinstance(rule, AdvantageRule):
        return rule.name, rule, dict(rule.options), rule.properties, True
    if not callable(rule):
        raise TypeError(f"`rule` must be a registered rule name, an AdvantageRule or a "
                        f"callable rewards[B, m] -> advantages[B, m], got {rule!r}.")
    parameters = inspect.signature(rule).parameters.values()
    options = {p.name: p.default for p in parameters if p.kind is p.KEYWORD_ONLY}
    return getattr(rule, "__name__", repr(rule)), rule, options, frozenset(), False


def _check_rule_iv(rule, properties, options, rtol, atol, max_examples):
    name, function, accepted, claimed, registered = _resolve_rule(rule)
    options = dict(options or {})
    if registered:
        unknown = sorted(set(options) - set(accepted))
        if unknown:
            raise TypeError(f"rule {name!r} does not accept option(s) {unknown}; accepted: "
                            f"{sorted(accepted) or 'none'}.")
    if "seed" in accepted and options.get("seed") is None:
        options["seed"] = 0  # a random rule is compared between calls under a fixed seed
    if registered:  # what the rule claims under these options (derived for composed rules)
        claimed = function.specialized(function.resolve(options)).properties
    if properties is None:
        wanted = set(claimed) if registered else {"deterministic"}
    elif properties == "all":
        wanted = set(CHECKABLE)
    else:
        wanted = {properties} if isinstance(properties, str) else set(properties)
        unknown = sorted(wanted - set(CHECKABLE))
        if unknown:
            raise ValueError(f"`properties` has unknown name(s) {', '.join(map(repr, unknown))}"
                             f"; checkable: {', '.join(CHECKABLE)}."
                             f"{did_you_mean(unknown[0], CHECKABLE)}")
    wanted |= set(ALWAYS_CHECKED)
    if "deterministic" in wanted and "seed" not in accepted:
        wanted.add("batch_independent")
    real_iv(rtol, "rtol", low=0.0, high=1.0, high_open=True)
    real_iv(atol, "atol", low=0.0)
    integer_iv(max_examples, "max_examples", low=1)
    ordered = [p for p in CHECKABLE if p in wanted]
    return name, function, accepted, options, claimed, registered, ordered


def _default_rewards(accepted, options):
    """Reward batches valid for the rule's tail fit, if it has ``tail_fraction``."""
    beta = options.get("tail_fraction", accepted.get("tail_fraction"))
    prefixes = options.get("n_prefixes", accepted.get("n_prefixes"))
    beta = beta if isinstance(beta, (int, float)) and 0 < beta < 1 else None
    prefixes = prefixes if isinstance(prefixes, int) and beta is not None else None
    return reward_batches(batch_size=(1, 4), group_size=(2, 48), tail_fraction=beta,
                          n_prefixes=prefixes)


def check_rule(rule, *, properties=None, options=None, rewards=None, rtol=DEFAULT_RTOL,
               atol=0.0, dtype=np.float64, max_examples=40, seed=0) -> ConformanceReport:
    r"""Check the algebraic properties of an advantage rule on generated rewards.

    For each property a hypothesis test draws reward batches ``r`` (``[B, m]``) and the
    property's own parameters, and compares advantages ``A`` of the rule:

    - ``finite``: every ``A`` is finite (always checked).
    - ``shape_dtype``: ``A.shape == r.shape``, ``A.dtype == dtype``; a registered rule also
      maps one group ``r[0]`` (1-D) to row 0 (always checked).
    - ``no_input_mutation``: ``r`` is unchanged, bitwise (always checked).
    - ``deterministic``: two calls agree bitwise.
    - ``batch_independent``: ``A(r[b:b+1]) = A(r)[b]`` and ``A(r[::-1]) = A(r)[::-1]``;
      checked with ``deterministic`` unless the rule takes a ``seed`` (a seeded rule's rows
      share one random stream, so they are independent only in distribution).
    - ``zero_sum``: ``Σ_i A_bi = 0``.
    - ``shift_invariant``: ``A(r + c_b) = A(r)`` with ``c_b = j · 2^⌊log2 spread_b⌋``,
      ``j ∈ [-8, 8]`` drawn per row.
    - ``scale_equivariant``: ``A(a r) = a A(r)``, ``a`` a power of two in ``2^[-30, 30]``
      or a float in ``[1e-3, 1e3]``.
    - ``scale_invariant``: ``A(a r) = A(r)``, ``a`` as above.
    - ``permutation_equivariant``: ``A(r[:, π]) = A(r)[:, π]``.
    - ``monotone``: ``r_bi < r_bj ⇒ A_bi ≤ A_bj`` and ``r_bi = r_bj ⇒ A_bi = A_bj``.

    Parameters
    ----------
    rule : str, AdvantageRule or callable
        A registered rule name, a :class:`tailext.AdvantageRule`, or any callable
        ``rule(rewards[B, m], **options) -> advantages[B, m]``.
    properties : None, "all", str or iterable of str
        What to check besides :data:`ALWAYS_CHECKED`. ``None``: for a registered rule the
        properties it claims under ``options`` (those its registration claims, or for a
        composed rule such as ``weighted_sum`` those derived from its components); for a plain callable ``deterministic`` (and with
        it ``batch_independent``). ``"all"``: every property in :data:`CHECKABLE` (to find out
        which hold).
    options : dict, optional
        Keyword options passed to every call (validated first for a registered rule). If the rule accepts ``seed`` and none is
        given, ``seed=0`` is passed, so that a random rule is compared between calls under
        one seed (and ``deterministic`` then means "determined by the seed").
    rewards : hypothesis strategy, optional
        Of reward batches ``[B, m]``. Default :func:`~tailext.testing.strategies.
        reward_batches` with ``B ≤ 4``, ``m ≤ 48`` (rarely 1024 or 4096), and, for a rule with
        a ``tail_fraction`` option, only group sizes valid for its tail fit (and prefixes).
        Inputs the rule rejects with a ``ValueError`` count as outside its domain.
    rtol : float, default 1e-8
        Relative tolerance of float comparisons (see Notes).
    atol : float, default 0
        Absolute tolerance added to every comparison, in advantage units: for a rule whose
        output on an all-equal group is rounding noise of a fixed size (e.g. centred softmax
        weights, ~1e-17) instead of exact zeros.
    dtype : dtype or None, default float64
        Expected output dtype; ``None`` skips the dtype check.
    max_examples : int, default 40
        Hypothesis examples per property.
    seed : int or None, default 0
        Seed of hypothesis' search (``None``: random), so a report is reproducible.

    Returns
    -------
    ConformanceReport
        Per property: holds or not, the minimal falsifying example (shrunk by hypothesis),
        and how many inputs were run and rejected.

    Notes
    -----
    Float comparisons use a per-row tolerance scaled to the row,

    .. math:: t_b = \mathrm{rtol} \cdot \max_i |A_{bi}| + m\,\varepsilon \max_i |r_{bi}|
              + \mathrm{atol},

    with the maximum over both compared results (and inputs), ``ε`` the float64 machine
    epsilon. The first term is the relative accuracy asked of the rule; the second is the
    rounding floor of a sum of ``m`` rewards, so that an all-equal group that a rule maps
    to rounding noise (``r − mean r ≈ 1e-17``) passes while a group mapped to anything
    larger does not. Rows agree when ``max_i |A_bi − A'_bi| ≤ t_b``; a row sums to zero
    when ``|Σ_i A_bi| ≤ m t_b``; monotonicity allows steps down (and differences between
    tied rewards) up to ``t_b``. ``deterministic`` asks for bitwise equality. The default
    ``rtol = 1e-8`` leaves room for a float64 rule's rounding under the offsets (up to
    ``1e4`` spreads) and shifts drawn, about 1e-12 relative, but not for a rule computed in
    float32 (pass ``rtol=1e-4`` or so for one). Shifted and scaled inputs are computed in
    float64; a draw where that rounding merges two rewards into a tie or reorders them is
    rejected, as it tests rounding rather than the rule.

    Examples
    --------
    >>> import numpy as np
    >>> from tailext.testing import check_rule
    >>> def centred(rewards):
    ...     r = np.asarray(rewards, dtype=np.float64)
    ...     return r - r.mean(axis=-1, keepdims=True)
    >>> report = check_rule(centred, properties=["zero_sum", "shift_invariant", "monotone"],
    ...                     max_examples=10)
    >>> report.ok, report["zero_sum"].holds
    (True, True)
    """
    name, function, accepted, options, claimed, registered, wanted = _check_rule_iv(
        rule, properties, options, rtol, atol, max_examples)
    strategy = _default_rewards(accepted, options) if rewards is None else rewards
    config = settings(max_examples=max_examples, deadline=None, database=None,
                      verbosity=Verbosity.quiet, report_multiple_bugs=False,
                      phases=(Phase.generate, Phase.shrink),
                      suppress_health_check=list(HealthCheck))
    results = {}
    for prop in wanted:
        if results and all(r.holds is None and not r.examples for r in results.values()):
            results[prop] = replace(next(iter(results.values())), name=prop)
            continue  # the rule accepted none of the inputs: the next runs would be the same
        subject = _Subject(function, options, float(rtol), float(atol), dtype,
                           registered)
        holds, message, example = True, "", None
        try:
            _property_test(_CHECKS[prop], subject, strategy, config, seed)()
        except _Violation as violation:
            holds, message, example = False, str(violation), violation.example
        except (Unsatisfiable, _OutsideDomain):
            holds = None
            message = (f"no input accepted: the rule rejected all {subject.rejected} drawn "
                       f"inputs (first: {subject.rejection}); pass `rewards=` a strategy "
                       f"inside its domain" if not subject.examples else
                       "too many draws were rejected (by the rule or by rounding checks)")
        except InvalidArgument:
            raise  # a bad `rewards` strategy: the caller's error, not the rule's
        except Exception as error:  # noqa: BLE001 - e.g. hypothesis' Flaky: report, not crash
            holds, message = False, f"{type(error).__name__}: {error}"
        results[prop] = PropertyResult(prop, holds, message, example, subject.examples,
                                       subject.rejected, subject.rejection)
    return ConformanceReport(name, results, frozenset(claimed))
