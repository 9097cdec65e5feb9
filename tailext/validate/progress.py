"""Progress bars of the checks: tqdm when shown, a silent stand-in otherwise.

With ``--no-progress`` nothing is imported, so the checks run without tqdm installed.
"""

from __future__ import annotations

__all__ = ["bar"]


class _Silent:
    """The subset of tqdm's interface the checks use, doing nothing."""

    def __init__(self, total=None, **_):
        self.total, self.n = total, 0

    def update(self, n=1):
        self.n += n

    def set_postfix(self, *_, **__):
        pass

    def set_postfix_str(self, *_, **__):
        pass

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *_):
        self.close()


def bar(*, total, desc: str, enabled: bool, unit: str = "it", initial: int = 0):
    """A tqdm bar (``enabled``) or a silent stand-in with the same methods."""
    if not enabled:
        return _Silent(total=total)
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, initial=initial, dynamic_ncols=True,
                unit_scale=unit == "rep")
