// Typesets the formulas that pymdownx.arithmatex (generic mode) leaves in the pages as
// <span class="arithmatex">\(...\)</span> and <div class="arithmatex">\[...\]</div>, with the
// KaTeX copy in docs/assets/katex/ (no file is fetched from outside the site).
(function () {
  "use strict";
  var options = {
    delimiters: [
      { left: "\\(", right: "\\)", display: false },
      { left: "\\[", right: "\\]", display: true },
    ],
    // A formula KaTeX cannot parse shows its source in red instead of breaking the page;
    // docs_hooks/math_site.py fails the strict build on such formulas where node is found.
    throwOnError: false,
  };
  function typeset() {
    document.querySelectorAll(".arithmatex").forEach(function (element) {
      renderMathInElement(element, options);
    });
  }
  // Material's document$ observable fires on every page load (also with instant navigation).
  if (typeof document$ !== "undefined") {
    document$.subscribe(typeset);
  } else {
    document.addEventListener("DOMContentLoaded", typeset);
  }
})();
