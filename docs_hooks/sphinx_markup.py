"""mkdocs hook: render the Sphinx markup of tailext's numpydoc docstrings readably.

The docstrings are written for numpydoc (``:func:`name``` roles, ``.. math::`` directives).
mkdocstrings passes both through as text: a role becomes ``:func:<code>name</code>`` and a
directive a stray ``.. math::`` paragraph before the indented LaTeX, which renders as a
code block. This hook drops the role prefix and labels the LaTeX block, offline (no MathJax).
"""

import re

_ROLE = re.compile(r":(?:func|class|mod|meth|attr|data|obj):(<code>)")
_MATH = re.compile(r"<p>\.\. math::\s*(.*?)</p>", re.DOTALL)  # block or one-line form


def on_page_content(html, **_):
    html = _ROLE.sub(r"\1", html)
    return _MATH.sub(lambda match: "<p><em>Formula (LaTeX):</em>"
                     + (f" <code>{match.group(1)}</code>" if match.group(1) else "")
                     + "</p>", html)
