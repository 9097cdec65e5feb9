"""Theory-verification suite behind ``tailext validate`` (see docs/validation.md).

Checks: :mod:`validation.lemmas`, :mod:`validation.rates`, :mod:`validation.appendix_e`.
Building blocks: :mod:`validation.diagnostic_model` (the MATH §9 model and its quadrature),
:mod:`validation.replication_kernels` / :mod:`validation.replication_torch` (Monte Carlo
backends), :mod:`validation.simulation` (seeded, chunked replications and their summaries),
:mod:`validation.slopes`, :mod:`validation.reporting`, :mod:`validation.figures`.
"""
