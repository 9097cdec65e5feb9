"""The ```python blocks of the documentation run as written.

Each page's blocks run in order in one namespace, as a reader would paste them. A block is
skipped when the line just before it is ``<!-- skip-test: reason -->`` (only for code that
cannot run here, e.g. it needs CUDA). A block that imports torch, verl or trl is skipped
when that package is not installed; pages keep such blocks self-contained, so the rest of
the page still runs.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]

# Pages whose examples are executed by a dedicated test, or that show fragments of a
# trainer configuration rather than a program; running them here would duplicate or fail.
TESTED_ELSEWHERE = {
    "testing.md": "executed by tests/test_docs_testing.py (with its own hypothesis budget)",
    "integrations.md": "the TRL block is a fragment (model, dataset, tokenizer are the "
                       "reader's); tests/test_integration_trl.py runs the same trainer",
}
OPTIONAL = ("torch", "verl", "trl")
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
    imported = set(re.findall(r"^\s*(?:import|from)\s+([A-Za-z_]\w*)", code, re.MULTILINE))
    imported |= set(re.findall(r"^\s*import\s+[\w., ]*?\b(torch|verl|trl)\b", code,
                               re.MULTILINE))
    imported |= {"torch"} if "tailext.torch" in code else set()
    return sorted(name for name in imported & set(OPTIONAL)
                  if importlib.util.find_spec(name) is None)


def test_skip_markers_are_parsed():
    text = "intro\n<!-- skip-test: needs CUDA -->\n```python\nx = 1\n```\n\n```python\ny = 2\n```\n"
    assert [(line, reason) for line, _, reason in python_blocks(text)] == [
        (4, "needs CUDA"), (8, None)]


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
    from tailext import rules

    # examples may register rules: keep the registry other tests see unchanged
    monkeypatch.setattr(rules, "_REGISTRY", dict(rules._REGISTRY))
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    namespace = {"__name__": f"docs_{page.stem}"}
    for line, code in runnable:
        exec(compile("\n" * (line - 1) + code, str(page), "exec"), namespace)
