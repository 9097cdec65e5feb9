"""mkdocs hook: the registry's formulas on the math page, and checks of the site's math.

* ``<!-- rule-table -->`` in a page is replaced by a table of every registered advantage
  rule, read from the registry (name, report label, LaTeX formula, options, minimum group
  size), so the page shows the formulas the code carries and cannot drift from them.
* After the build, every formula of the site (what pymdownx.arithmatex marked up) is
  parsed by the vendored KaTeX under node, and a formula KaTeX rejects is a warning (an
  error under ``mkdocs build --strict``). Without node the parse check is skipped with an
  info line: KaTeX still renders in the browser, showing a bad formula's source in red.
* After the build, a ``<script>``, ``<link>`` or ``<img>`` that loads from ``http(s)://``
  or ``//`` is a warning: the site must read offline.
"""

from __future__ import annotations

import html
import json
import logging
import re
import shutil
import subprocess
from pathlib import Path

log = logging.getLogger("mkdocs.hooks.math_site")

RULE_TABLE = "<!-- rule-table -->"
KATEX = Path(__file__).resolve().parents[1] / "docs" / "assets" / "katex" / "katex.min.js"

_ARITHMATEX = re.compile(r'<(?P<tag>span|div) class="arithmatex">(?P<tex>.*?)</(?P=tag)>',
                         re.DOTALL)
_REMOTE = re.compile(r'<(?:script|link|img)\b[^>]*\b(?:src|href)\s*=\s*["\']?'
                     r'(?P<url>(?:https?:)?//[^"\'\s>]+)', re.IGNORECASE)

# Parses each formula of a JSON list from stdin; prints the list of errors.
_NODE_CHECK = """
const katex = require(process.argv[1]);
let input = "";
process.stdin.on("data", (chunk) => { input += chunk; });
process.stdin.on("end", () => {
  const errors = [];
  for (const [tex, display, where] of JSON.parse(input)) {
    try { katex.renderToString(tex, {displayMode: display, throwOnError: true}); }
    catch (e) { errors.push([where, tex, String(e.message)]); }
  }
  process.stdout.write(JSON.stringify(errors));
});
"""


def _cell(text: str) -> str:
    return text.replace("|", r"\|")


def _tex_cell(tex: str) -> str:
    """A formula for a table cell: one line, ``|`` (the cell separator) as ``\\vert``."""
    return " ".join(tex.split()).replace("|", r"\vert ")


def rule_table() -> str:
    """Markdown table of every registered rule at its default options."""
    from tailext.rules.registry import available_methods, get_rule

    rows = ["| name | label | formula | options (defaults) | min. group |",
            "|---|---|---|---|---|"]
    for name in available_methods():
        rule = get_rule(name)
        options = ", ".join(f"`{key}={value!r}`" for key, value in rule.options.items())
        formula = _tex_cell(rule.formula)
        minimum = rule.min_group_size(**rule.resolve({}))
        rows.append(f"| `{name}` | {_cell(rule.label)} | "
                    f"{'$' + formula + '$' if formula else '–'} | "
                    f"{options or '–'} | {minimum} |")
    return "\n".join(rows)


def on_page_markdown(markdown, **_):
    if RULE_TABLE in markdown:
        return markdown.replace(RULE_TABLE, rule_table())
    return markdown


def _site_formulas(site: Path):
    """``[tex, display, page]`` of every distinct formula in the built pages."""
    seen = {}
    for page in sorted(site.rglob("*.html")):
        for match in _ARITHMATEX.finditer(page.read_text(encoding="utf-8")):
            tex = html.unescape(match["tex"]).strip()
            display = match["tag"] == "div"
            opening, closing = (r"\[", r"\]") if display else (r"\(", r"\)")
            if tex.startswith(opening) and tex.endswith(closing):
                tex = tex[2:-2]
            seen.setdefault((tex, display), str(page.relative_to(site)))
    return [[tex, display, where] for (tex, display), where in seen.items()]


def _check_formulas(site: Path) -> None:
    node = shutil.which("node")
    formulas = _site_formulas(site)
    if node is None:
        log.info("math_site: node not found; %d formulas not parse-checked.", len(formulas))
        return
    result = subprocess.run([node, "-e", _NODE_CHECK, str(KATEX)], input=json.dumps(formulas),
                            capture_output=True, text=True, timeout=120, check=False)
    if result.returncode != 0:
        log.warning("math_site: the KaTeX parse check failed to run: %s",
                    result.stderr.strip()[-500:])
        return
    errors = json.loads(result.stdout)
    for where, tex, message in errors:
        log.warning("math_site: KaTeX cannot parse a formula in %s: %s\n    %s",
                    where, message, tex)
    log.info("math_site: %d distinct formulas checked with KaTeX, %d rejected.",
             len(formulas), len(errors))


def _check_offline(site: Path) -> None:
    for page in sorted(site.rglob("*.html")):
        for match in _REMOTE.finditer(page.read_text(encoding="utf-8")):
            log.warning("math_site: %s loads %s from outside the site; the documentation "
                        "must read offline.", page.relative_to(site), match["url"])


def on_post_build(config, **_):
    site = Path(config["site_dir"])
    _check_formulas(site)
    _check_offline(site)
