"""The one seeding scheme of the validation suite.

Every random stream of a run is ``numpy.random.SeedSequence(seed, spawn_key=key)``: the run's
master ``seed`` (``--seed``) and a *key*, a tuple of non-negative integers that names the
stream. The keys are documented here, one table per check; nothing hashes a string or a
name, so a stream depends only on documented integers, and adding a stream never moves
another one.

Monte Carlo checks (``appendix-e``, ``rates``): ``(m, block)`` — group size and block index
(:func:`tailext.validate.montecarlo.engine.block_rewards`).

``binary-rewards``: ``(m, N, rule)`` — group size, target and the rule's position in
:data:`tailext.validate.theory.binary_rewards.RULES`, one stream per rule and cell.

Simulator (:class:`SimulatorStream`, first element of the key):

=================  ============================================  ===========================
stream             key                                           draws
=================  ============================================  ===========================
``PROMPTS``        ``(PROMPTS, scenario)``                       train/validation/test prompts
``TRAINING``       ``(TRAINING, training seed, m)``              batches and sampling uniforms
``RULE``           ``(RULE, rule, m)``                           a rule's own randomness
``ALIGNMENT``      ``(ALIGNMENT, scenario)``                     the oracle-alignment table
``SELF_CHECKS``    ``(SELF_CHECKS,)``                            Monte Carlo of the self-checks
``PREDICTION``     ``(PREDICTION, scenario)``                    the tail-prediction table
``BOOTSTRAP``      ``(BOOTSTRAP,)``                              paired prompt bootstrap
=================  ============================================  ===========================

``scenario`` is the scenario's position in :data:`tailext.validate.simulator.config.SCENARIOS`,
``rule`` the rule's position in :data:`tailext.validate.rules.RULES`.

Post-training (:class:`PosttrainStream`): one key ``(stream,)`` per component (prompts,
teacher, corpus, reward model, initial policy, pretraining, evaluation, training, validation,
bootstrap, the TRL run's pieces, the risky task's token set and hash); torch generators get
:func:`torch_seed` of that key. A rule that draws random numbers (Prefix-TEA's prefix order)
gets the numpy stream ``(RULE, step)`` of the run's training seed at each step. Every
rule trains and is validated on the same two streams, ``(TRAINING,)`` and
``(VALIDATION,)``, and evaluated on ``(EVALUATION,)``: common random numbers, so the paired
comparisons between rules carry less sampling noise.
"""

from __future__ import annotations

import enum

import numpy as np

__all__ = ["SCHEME", "SimulatorStream", "PosttrainStream", "sequence", "generator",
           "torch_seed"]

#: The scheme's name, recorded in every configuration: a record drawn under another scheme
#: is never resumed by this code (its cells would mix two sets of random streams).
SCHEME = "SeedSequence(seed, spawn_key=key) with the keys of tailext.validate.seeding, v1"


class SimulatorStream(enum.IntEnum):
    """First element of every simulator stream key (see the module docstring)."""

    PROMPTS = 0
    TRAINING = 1
    RULE = 2
    ALIGNMENT = 3
    SELF_CHECKS = 4
    PREDICTION = 5
    BOOTSTRAP = 6


class PosttrainStream(enum.IntEnum):
    """First element of every post-training stream key (see the module docstring)."""

    PROMPTS = 0
    TEACHER = 1
    CORPUS_PROMPTS = 2
    CORPUS = 3
    REWARD_MODEL = 4
    POLICY_INIT = 5
    PRETRAIN = 6
    EVALUATION = 7
    TRAINING = 8
    VALIDATION = 9
    BOOTSTRAP = 10
    BOOTSTRAP_BASE = 11
    TRL_INIT = 12
    TRL_PRETRAIN = 13
    TRL_TRAINING = 14
    RULE = 15
    RISKY = 16


def _key(key) -> tuple[int, ...]:
    key = tuple(int(k) for k in key)
    if any(k < 0 for k in key):
        raise ValueError(f"stream keys are non-negative integers, got {key}.")
    return key


def sequence(seed: int, *key: int) -> np.random.SeedSequence:
    """``SeedSequence(seed, spawn_key=key)``: the stream ``key`` of a run seeded ``seed``."""
    return np.random.SeedSequence(int(seed), spawn_key=_key(key))


def generator(seed: int, *key: int) -> np.random.Generator:
    """A PCG64 generator on stream ``key`` of ``seed``."""
    return np.random.Generator(np.random.PCG64(sequence(seed, *key)))


def torch_seed(seed: int, *key: int) -> int:
    """A 63-bit integer from stream ``key`` of ``seed``, for ``torch.Generator.manual_seed``
    (and other libraries that take one integer)."""
    return int(sequence(seed, *key).generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))
