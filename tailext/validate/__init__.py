"""The checks behind ``tailext validate`` (see docs/validation.md), laid out by job.

- :mod:`.theory` — the paper's theory, checked numerically: :mod:`.theory.lemmas` (Lemmas 1
  and 2 by quadrature), :mod:`.theory.rates` (Theorems 1 and 2 as fitted slopes),
  :mod:`.theory.appendix_e` (the Appendix E diagnostic beside the paper's Table 15), and
  :mod:`.theory.binary_rewards` (the rules on 0/1 rewards against the pass@N oracle);
- :mod:`.montecarlo` — the Monte Carlo engine those two run on: the Gaussian-tail model and
  its quadrature (:mod:`.montecarlo.model`), numba and torch replication kernels, seeded
  block-wise simulation (:mod:`.montecarlo.engine`), summaries, slope fits, figures;
- :mod:`.simulator` — every rule trained on an exact contextual bandit (``simulator``);
- :mod:`.posttrain` — a toy torch post-training run of a small language model
  (``posttrain``);
- shared by all: :mod:`.runner` (resumable cells, Ctrl-C handling), :mod:`.records` (the
  one record schema and atomic writer, also used by ``benchmarks/``), :mod:`.seeding` (the
  one seeding scheme), :mod:`.rules` (paper labels → tailext methods), :mod:`.arguments`
  (command-line flags and their validation), :mod:`.reporting`, :mod:`.progress`.

Nothing here is imported by ``import tailext``; matplotlib, tqdm and torch are imported only
by the checks that need them (``pip install 'tailext[validate]'``, and ``tailext[torch]`` for
``posttrain`` and the torch Monte Carlo backend).
"""
