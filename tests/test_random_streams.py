"""Random rules in trainers: a configured int seed starts a stream that later steps continue."""

import numpy as np
import pytest

import tailext
from tailext.integrations._streams import RandomStreams

REWARDS = np.random.default_rng(0).normal(size=(4, 32))


def test_an_int_seed_is_reproducible_per_stream_and_advances_per_call():
    first, again = RandomStreams(), RandomStreams()
    calls = [tailext.advantages(REWARDS, "prefix_tea", **first.options("prefix_tea", {"seed": 7}))
             for _ in range(2)]
    replay = tailext.advantages(REWARDS, "prefix_tea", **again.options("prefix_tea", {"seed": 7}))
    np.testing.assert_array_equal(calls[0], replay)        # the same seed, the same first step
    assert not np.array_equal(calls[0], calls[1])          # the next step draws new prefixes
    # without the streams an int seed repeats its draws: the prefixes would be the same ranks
    np.testing.assert_array_equal(tailext.advantages(REWARDS, "prefix_tea", seed=7),
                                  tailext.advantages(REWARDS, "prefix_tea", seed=7))


def test_rules_without_a_seed_are_untouched_and_the_default_seed_fills_in():
    streams = RandomStreams(default_seed=3)
    assert streams.options("tea", {"n_target": 64}) == {"n_target": 64}
    options = streams.options("chow_bon_rl", {})
    assert isinstance(options["seed"], np.random.Generator)
    expected = np.random.default_rng(3).random(4)
    np.testing.assert_array_equal(options["seed"].random(4), expected)
    assert streams.options("chow_bon_rl", {})["seed"] is options["seed"]   # one per place


@pytest.mark.parametrize("components", [
    [{"method": "prefix_tea", "weight": 1.0, "options": {"seed": 5}}, {"method": "tea",
                                                                        "weight": 1.0}],
    [("prefix_tea", 1.0, {"seed": 5}), ("tea", 1.0)],
])
def test_components_of_a_composed_rule_get_their_own_streams(components):
    streams = RandomStreams()
    options = streams.options("weighted_sum", {"components": components})
    seeded = options["components"][0]
    generator = seeded["options"]["seed"] if isinstance(seeded, dict) else seeded[2]["seed"]
    assert isinstance(generator, np.random.Generator)
    first = tailext.advantages(REWARDS, "weighted_sum", **options)
    second = tailext.advantages(REWARDS, "weighted_sum",
                                **streams.options("weighted_sum", {"components": components}))
    assert not np.array_equal(first, second)
    tea = options["components"][1]
    assert "seed" not in (tea.get("options", {}) if isinstance(tea, dict) else tea[2])
