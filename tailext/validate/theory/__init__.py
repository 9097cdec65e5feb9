"""The paper's theory, checked numerically: ``lemmas``, ``rates`` and ``appendix-e``."""
