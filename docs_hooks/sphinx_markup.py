"""griffe extension: the Sphinx markup of tailext's numpydoc docstrings as markdown and math.

The docstrings are written for numpydoc: cross-reference roles (:func:`name`, :class:`…`)
and formulas as ``.. math::`` directives and :math:`…` roles. mkdocstrings renders
docstrings as markdown, in which that markup would come out as literal text and code
blocks. Before rendering, this extension rewrites the copy of each docstring that
mkdocstrings reads (the source and ``help()`` keep the numpydoc text):

* a ``.. math::`` directive and its indented body become ``$$ … $$`` display blocks, one
  per equation (Sphinx reads blank-line separated parts of the body as separate equations);
* ``:math:`x``` becomes ``$x$``;
* ``:func:`x```, ``:class:`x``` and the other Python-domain roles become inline code
  ``x`` (``~pkg.name`` shows as ``name``, as in Sphinx);
* in the item lines of the Parameters, Returns, … sections (``name : type``), the
  reStructuredText literals ````x```` lose their backticks: mkdocstrings shows the type as
  code already, where the backticks would appear literally.

pymdownx.arithmatex then marks the formulas for KaTeX (mkdocs.yml), like those of the
markdown pages. Loaded by mkdocstrings-python (``extensions`` in mkdocs.yml).
"""

from __future__ import annotations

import re
import textwrap

import griffe

__all__ = ["SphinxMarkup", "to_markdown"]

_DIRECTIVE = re.compile(r"^(?P<indent>[ \t]*)\.\. math::[ \t]*(?P<inline>.*?)[ \t]*$")
_MATH_ROLE = re.compile(r":math:`(?P<tex>[^`]+)`")
# A docstring's citation of the math page: ``docs/math.md#psi`` (in backticks or not).
_CITATION = re.compile(r"(?:``)?docs/math\.md#(?P<anchor>[A-Za-z0-9_-]+)(?:``)?")
_ITEM_SECTIONS = {"parameters", "other parameters", "returns", "yields", "receives", "raises",
                  "warns", "attributes"}
_LITERAL = re.compile(r"``(?P<text>[^`]+)``")
_ROLE = re.compile(r":(?:py:)?(?:func|class|mod|meth|attr|data|obj|exc|const):"
                   r"`(?P<tilde>~?)(?P<target>[^`]+)`")


def _indent_width(line: str) -> int:
    return len(line) - len(line.lstrip())


def _display_blocks(indent: str, body: list[str]) -> list[str]:
    """``$$`` blocks, one per blank-line separated equation of ``body``, at ``indent``."""
    lines = textwrap.dedent("\n".join(body)).split("\n")
    equations, current = [], []
    for line in lines + [""]:
        if line.strip():
            current.append(line.rstrip())
        elif current:
            equations.append(current)
            current = []
    out = [""]
    for equation in equations:
        out += [indent + "$$", *(indent + line for line in equation), indent + "$$", ""]
    return out


def _math_directives(text: str) -> str:
    lines = text.split("\n")
    out, i = [], 0
    while i < len(lines):
        match = _DIRECTIVE.match(lines[i])
        if match is None:
            out.append(lines[i])
            i += 1
            continue
        indent, width = match["indent"], len(match["indent"])
        body = [match["inline"]] if match["inline"] else []
        i += 1
        # The body: every following line that is blank or indented deeper than the directive.
        while i < len(lines) and (not lines[i].strip() or _indent_width(lines[i]) > width):
            body.append(lines[i])
            i += 1
        out += _display_blocks(indent, body)
    return "\n".join(out)


def _plain_item_types(text: str) -> str:
    """Item lines (unindented, inside an item section) without ````…```` literals."""
    lines = text.split("\n")
    section = None
    for i, line in enumerate(lines):
        underline = i + 1 < len(lines) and set(lines[i + 1].strip()) == {"-"}
        if underline and line.strip():
            section = line.strip().lower()
        elif (section in _ITEM_SECTIONS and line.strip() and not line[0].isspace()
              and set(line.strip()) != {"-"}):
            lines[i] = _LITERAL.sub(lambda match: match["text"], line)
    return "\n".join(lines)


def _role(match: re.Match) -> str:
    target = match["target"]
    if match["tilde"]:
        target = target.rsplit(".", 1)[-1]
    return f"`{target}`"


def to_markdown(text: str) -> str:
    r"""The markdown form of a numpydoc docstring's Sphinx markup.

    Examples
    --------
    >>> to_markdown("See :func:`~tailext.kappa`, :math:`\\kappa_N`.")
    'See `kappa`, $\\kappa_N$.'
    >>> to_markdown("(see docs/math.md#psi)")
    '(see [math.md#psi](../math.md#psi))'
    >>> print(to_markdown("Text.\n\n.. math::\n\n    a = b\n\nMore."))
    Text.
    <BLANKLINE>
    <BLANKLINE>
    $$
    a = b
    $$
    <BLANKLINE>
    More.
    """
    text = _plain_item_types(_math_directives(text))
    text = _MATH_ROLE.sub(lambda match: f"${match['tex'].strip()}$", text)
    # API pages live in docs/api/: the math page is one folder up
    text = _CITATION.sub(lambda match: f"[math.md#{match['anchor']}](../math.md#"
                                       f"{match['anchor']})", text)
    return _ROLE.sub(_role, text)


class SphinxMarkup(griffe.Extension):
    """Rewrite every loaded object's docstring with :func:`to_markdown`."""

    def on_instance(self, *, obj, **kwargs) -> None:
        if obj.docstring is not None:
            obj.docstring.value = to_markdown(obj.docstring.value)
