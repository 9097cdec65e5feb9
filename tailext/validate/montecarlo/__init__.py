"""The Monte Carlo engine of the theory checks: the model of docs/math.md#diagnostic and its
quadrature (:mod:`.model`), the replication kernels (:mod:`.kernels` for numba,
:mod:`.kernels_torch` for torch), seeded block-wise simulation (:mod:`.engine`), per-cell
summaries and slopes (:mod:`.summary`, :mod:`.slopes`), the resumable check built on them
(:mod:`.check`) and its figures (:mod:`.figures`)."""
