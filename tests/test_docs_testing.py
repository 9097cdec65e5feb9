"""The Python blocks of docs/testing.md run, in order, as one program (their asserts hold)."""

import re
from pathlib import Path

import functools

import numba

import tailext.testing
from tailext.rules import registry

DOC = Path(__file__).resolve().parents[1] / "docs" / "testing.md"


def python_blocks(text):
    return re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)


def test_testing_guide_examples_run(monkeypatch, capsys):
    # the guide registers a rule: keep it out of the registry other tests see
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    # fewer hypothesis examples than the guide's default 40 keep the default run fast; the
    # guide's asserts (incl. that the bug it shows is found) must still hold
    monkeypatch.setattr(tailext.testing, "check_rule",
                        functools.partial(tailext.testing.check_rule, max_examples=15))
    threads = numba.get_num_threads()
    numba.set_num_threads(1)  # many tiny kernel calls; see tests/test_conformance.py
    try:
        blocks = python_blocks(DOC.read_text(encoding="utf-8"))
        assert len(blocks) >= 5
        namespace = {"__name__": "docs_testing"}
        for block in blocks:
            exec(compile(block, str(DOC), "exec"), namespace)
    finally:
        numba.set_num_threads(threads)
    printed = capsys.readouterr().out
    assert "conformance of 'top_k_centred':" in printed
    assert "scale_invariant          FAILS" in printed


def test_guide_describes_every_checkable_property():
    from tailext.testing import CHECKABLE
    text = DOC.read_text(encoding="utf-8")
    for name in CHECKABLE:
        assert f"| `{name}` |" in text, name
