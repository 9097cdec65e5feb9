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


# ---- citations of the math page ----------------------------------------------------------
# Code and docs cite formulas as ``docs/math.md#anchor`` (docstrings, comments) or
# ``[text](math.md#anchor)`` (pages). mkdocs --strict checks the links between pages, but not
# docstrings and comments, so a renamed heading would leave them pointing nowhere: this does.

MATH_PAGE = ROOT / "docs" / "math.md"
CITED_TREES = ("tailext", "tests", "benchmarks", "docs", "docs_hooks", "validation")
FENCE = re.compile(r"^```.*?^```", re.DOTALL | re.MULTILINE)
HEADING_ID = re.compile(r"^#{1,6} .*\{#(?P<id>[A-Za-z0-9_-]+)\}\s*$", re.MULTILINE)
CITATION = re.compile(r"\bmath\.md#(?P<anchor>[A-Za-z0-9_-]+)")
IN_PAGE_LINK = re.compile(r"\]\(#(?P<anchor>[A-Za-z0-9_-]+)\)")
# Files outside the repository that older text cited, and their marker for a convention.
FOREIGN = re.compile(r"MATH(\.md)?\s*§|BASELINES\.md|\[choice\]")


def heading_ids(text):
    """The ``{#id}`` of every heading, outside fenced code (where ``#`` starts a comment)."""
    return set(HEADING_ID.findall(FENCE.sub("", text)))


def cited_files():
    """Every .py and .md file of the source, test, benchmark and documentation trees, and the
    top-level .md files (the changelog too: its links must resolve as well); not this file,
    whose examples are made up."""
    files = sorted(ROOT.glob("*.md"))
    for tree in CITED_TREES:
        files += sorted(path for suffix in ("py", "md")
                        for path in (ROOT / tree).rglob(f"*.{suffix}"))
    return [path for path in files if path != Path(__file__).resolve()]


def citations(text):
    """``(line number, anchor)`` of every ``math.md#anchor`` in ``text``."""
    return [(text.count("\n", 0, match.start()) + 1, match["anchor"])
            for match in CITATION.finditer(text)]


def test_citation_parsing():
    page = "# Top {#top}\n## ψ {#psi}\n```python\n# not a heading {#nope}\n```\n### Other\n"
    assert heading_ids(page) == {"top", "psi"}
    text = "ψ (see docs/math.md#psi).\n[ψ](../math.md#tail-count), math.md#a_b-1: and math.md"
    assert citations(text) == [(1, "psi"), (2, "tail-count"), (2, "a_b-1")]
    assert FOREIGN.search("(MATH §3)") and FOREIGN.search("MATH.md §1")
    assert FOREIGN.search("of BASELINES.md") and FOREIGN.search("**[choice]**")
    assert not FOREIGN.search("FASTMATH = ...; BASELINES = [...]; [choices]")


def test_math_page_citations_resolve():
    anchors = heading_ids(MATH_PAGE.read_text(encoding="utf-8"))
    found, broken = 0, []
    for path in cited_files():
        text = path.read_text(encoding="utf-8")
        cited = citations(text)
        if path == MATH_PAGE:  # the page's own links are (#anchor)
            cited += [(text.count("\n", 0, match.start()) + 1, match["anchor"])
                      for match in IN_PAGE_LINK.finditer(FENCE.sub("", text))]
        found += len(cited)
        broken += [f"{path.relative_to(ROOT)}:{line}: #{anchor}" for line, anchor in cited
                   if anchor not in anchors]
    # tailext's docstrings alone cite the page some forty times: a count near zero means
    # the pattern no longer matches how citations are written
    assert found > 40, f"only {found} citations of docs/math.md found"
    assert not broken, "citations of docs/math.md anchors that do not exist:\n" + "\n".join(
        broken)


def test_nothing_cites_files_outside_the_repository():
    stale = [f"{path.relative_to(ROOT)}:{text.count(chr(10), 0, match.start()) + 1}: "
             f"{match.group(0)}"
             for path in cited_files() if path.name != "CHANGELOG.md"
             for text in [path.read_text(encoding="utf-8")]
             for match in FOREIGN.finditer(text)]
    assert not stale, ("cite docs/math.md#anchor instead of the spec files, and say in words "
                       "why a convention is tailext's:\n" + "\n".join(stale))


def test_docstring_markup_hook_examples():
    # the API pages' docstring rewriting (docs_hooks/sphinx_markup.py): its own examples
    import doctest
    import importlib.util

    path = ROOT / "docs_hooks" / "sphinx_markup.py"
    spec = importlib.util.spec_from_file_location("sphinx_markup", path)
    module = importlib.util.module_from_spec(spec)
    pytest.importorskip("griffe", reason="docs extra not installed")
    spec.loader.exec_module(module)
    result = doctest.testmod(module)
    assert result.attempted >= 3 and result.failed == 0
