"""verl's synchronous v1 trainer with tailext's metrics: ``trainer.v1.trainer_mode=tailext_sync``.

:class:`TailextPPOTrainerSync` is verl 0.9.1's ``PPOTrainerSync`` (the default v1 trainer)
with two additions, both through methods verl calls with a metrics dict:

- validation (``_val_metrics_update``): the unbiased best@k — and pass@k for 0/1 values —
  of :func:`tailext.integrations.verl.unbiased_val_metrics`, next to verl's bootstrap
  ``best@k/mean`` (which resamples with replacement and is biased low: 0.69 where the
  unbiased pass@4 of one success in four is 1);
- training (``_compute_advantage``): the counts of :func:`~tailext.integrations.verl.consume_counts`
  (``tailext/small_groups``, ``tailext/invalid_rollouts``, ``tailext/tied_tail_groups``)
  for the steps a tailext estimator ran.

Importing this module registers the class under ``tailext_sync``; the verl plugin
(:mod:`tailext.integrations.verl_plugin`) imports it right after ``verl.trainer.ppo.v1`` is
imported, in every process, so the ``TaskRunner`` that looks the mode up finds it. The
trainer runs exactly as ``sync`` mode: verl branches on ``self.trainer_mode == "sync"``
(replay buffer, refill, weight sync), so the class reports ``"sync"`` there.

For another verl trainer (``RayPPOTrainer``, the async v1 trainers, your own subclass),
put :class:`TailextMetrics` first in its bases, or call
:func:`~tailext.integrations.verl.unbiased_val_metrics` in your validation hook.
"""

from __future__ import annotations

from verl.trainer.ppo.v1 import PPOTrainerSync, register_trainer

from .verl import consume_counts, unbiased_val_metrics

__all__ = ["TRAINER_MODE", "TailextMetrics", "TailextPPOTrainerSync"]

#: The v1 trainer mode this module registers.
TRAINER_MODE = "tailext_sync"


class TailextMetrics:
    """Mixin for a verl trainer: tailext's validation metrics and advantage counts.

    ``_val_metrics_update`` exists on ``RayPPOTrainer`` and every v1 ``PPOTrainer`` and reads
    no trainer state; ``_compute_advantage(batch, metrics)`` is the v1 trainers' (the legacy
    ``RayPPOTrainer`` calls a module function instead, so there the counts are only logged
    by :mod:`tailext.integrations.verl`).
    """

    def _val_metrics_update(self, data_sources, sample_uids, reward_extra_infos_dict,
                            sample_turns, *args, **kwargs):
        metrics = super()._val_metrics_update(data_sources, sample_uids,
                                              reward_extra_infos_dict, sample_turns, *args,
                                              **kwargs)
        metrics.update(unbiased_val_metrics(data_sources, sample_uids, reward_extra_infos_dict))
        return metrics

    def _compute_advantage(self, batch, metrics):
        batch = super()._compute_advantage(batch, metrics)
        metrics.update(consume_counts())
        return batch


@register_trainer(TRAINER_MODE)
class TailextPPOTrainerSync(TailextMetrics, PPOTrainerSync):
    """``PPOTrainerSync`` with :class:`TailextMetrics` (``trainer.v1.trainer_mode=tailext_sync``)."""

    @property
    def trainer_mode(self) -> str:
        # verl sets self.trainer_mode from the config ("tailext_sync") and compares it with
        # "sync" to pick the replay buffer, the refill and the weight-sync path; this trainer
        # is the sync trainer, so it answers "sync" (and reads config.trainer.v1.sync).
        return "sync"

    @trainer_mode.setter
    def trainer_mode(self, value) -> None:
        if value not in ("sync", TRAINER_MODE):
            raise ValueError(f"{type(self).__name__} is the sync trainer "
                             f"(trainer.v1.trainer_mode={TRAINER_MODE}), got mode {value!r}.")
