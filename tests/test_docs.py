"""The ```python blocks of the documentation run as written.

Each page's blocks run in order in one namespace, as a reader would paste them. A block is
skipped when the line just before it is ``<!-- skip-test: reason -->`` (only for code that
cannot run here, e.g. it needs CUDA). A block that imports torch, verl, trl or skyrl is skipped
when that package is not installed; pages keep such blocks self-contained, so the rest of
the page still runs.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = (sorted((ROOT / "docs").glob("*.md")) + sorted((ROOT / "docs").glob("integrations/*.md"))
         + [ROOT / "README.md"])

# Pages whose examples are executed by a dedicated test, or that show fragments of a
# trainer configuration rather than a program; running them here would duplicate or fail.
TESTED_ELSEWHERE = {
    "testing.md": "executed by tests/test_docs_testing.py (with its own hypothesis budget)",
}
BLOCK = re.compile(r"(?P<before>[^\n]*)\n```python\n(?P<code>.*?)^```", re.DOTALL | re.MULTILINE)
SKIP = re.compile(r"<!--\s*skip-test:\s*(?P<reason>.+?)\s*-->")


def python_blocks(text):
    """``(line number, code, skip reason or None)`` of every ```python block."""
    blocks = []
    for match in BLOCK.finditer("\n" + text):
        skip = SKIP.search(match.group("before"))
        line = text.count("\n", 0, match.start("code") - 1) + 1
        blocks.append((line, match.group("code"), skip.group("reason") if skip else None))
    return blocks


def missing_packages(code):
    """Optional packages the block's import lines name (``import tailext.torch`` counts as
    torch, ``tailext.integrations.trl`` as trl) that are not installed here."""
    imports = " ".join(re.findall(r"^\s*(?:import|from)\s.*$", code, re.MULTILINE))
    named = set(re.findall(r"\b(torch|verl|trl|skyrl)\b", imports))
    return sorted(name for name in named if importlib.util.find_spec(name) is None)


def test_blocks_and_skip_markers_are_parsed():
    text = "intro\n<!-- skip-test: needs CUDA -->\n```python\nx = 1\n```\n\n```python\ny = 2\n```\n"
    assert [(line, code, reason) for line, code, reason in python_blocks(text)] == [
        (4, "x = 1\n", "needs CUDA"), (8, "y = 2\n", None)]


def test_optional_imports_are_detected(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)  # nothing installed
    assert missing_packages("import numpy as np\nimport tailext.torch as tt\n") == ["torch"]
    assert missing_packages("from tailext.integrations.trl import T\nimport verl\n") == [
        "trl", "verl"]
    assert missing_packages("x = 'torch'  # not an import\n") == []


@pytest.mark.parametrize("page", PAGES, ids=[page.name for page in PAGES])
def test_page_examples_run(page, monkeypatch, tmp_path):
    if page.name in TESTED_ELSEWHERE:
        pytest.skip(TESTED_ELSEWHERE[page.name])
    blocks = python_blocks(page.read_text(encoding="utf-8"))
    runnable = [(line, code) for line, code, reason in blocks
                if reason is None and not missing_packages(code)]
    if not runnable:
        missing = sorted({name for _, code, _ in blocks for name in missing_packages(code)})
        pytest.skip(f"needs {', '.join(missing)} (not installed)" if missing
                    else "no runnable python blocks")
    from tailext.rules import registry

    # examples may register rules: keep the registry other tests see unchanged
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    namespace = {"__name__": f"docs_{page.stem}"}
    for line, code in runnable:
        exec(compile("\n" * (line - 1) + code, str(page), "exec"), namespace)
