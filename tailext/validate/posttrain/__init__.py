"""``tailext validate posttrain``: a toy torch post-training run of a small language model.

:mod:`.model` (policy, sampler, reward model), :mod:`.corpus` (prompts, teacher corpus,
pretraining), :mod:`.training` (grouped policy-gradient training with a tailext rule),
:mod:`.evaluation` (the task and its held-out evaluation), :mod:`.trl_run` (the same task
through TRL), :mod:`.config`, :mod:`.report` and :mod:`.command`. Every module but
:mod:`.config`, :mod:`.report` and :mod:`.command` imports torch."""
