"""``tailext validate simulator``: every rule trained on an exact contextual bandit.

:mod:`.bandit` (the generative model, solved exactly), :mod:`.training` (policy-gradient
training of one cell), :mod:`.config` (scenarios, rules, grids), :mod:`.cells` (what each
cell computes), :mod:`.selfchecks`, :mod:`.analysis` (paired comparisons with GRPO),
:mod:`.report` and :mod:`.command` (the command line)."""
