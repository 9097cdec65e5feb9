"""The registry: one registration per rule, found by everything that lists the rules."""

import importlib
import pkgutil

import tailext
import tailext.rules

MACHINERY = {"registry", "dispatch", "policy"}


def test_every_rule_module_registers_its_rules_and_nothing_lists_them_elsewhere():
    modules = {info.name for info in pkgutil.iter_modules(tailext.rules.__path__)} - MACHINERY
    owners = {}
    for method in tailext.available_methods():
        module = tailext.get_rule(method).numpy.__module__
        owners.setdefault(module.rsplit(".", 1)[-1], []).append(method)
    # each rule module registers at least one rule, and every built-in rule comes from one
    assert set(owners) == modules, (sorted(owners), sorted(modules))
    for name in modules:
        assert importlib.import_module(f"tailext.rules.{name}").__doc__


def test_every_built_in_rule_carries_what_the_entry_points_need():
    for method in tailext.available_methods():
        rule = tailext.get_rule(method)
        options = rule.resolve({})
        assert rule.formula and rule.label and rule.torch is not None and rule.torch_masks
        assert isinstance(rule.min_group_size(**options), int)
        assert rule.properties <= tailext.rules.PROPERTIES
