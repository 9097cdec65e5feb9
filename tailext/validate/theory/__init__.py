"""Checks computed from exact models: the paper's theory (``lemmas``, ``rates``,
``appendix-e``) and the rules on 0/1 rewards against the pass@N oracle
(``binary-rewards``)."""
