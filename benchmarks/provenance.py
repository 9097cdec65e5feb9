"""Which tailext a benchmark measured: the git commit of the imported package's tree."""

from __future__ import annotations

import subprocess
from pathlib import Path


def tailext_commit() -> str:
    """Short commit of the checkout ``import tailext`` resolves to, ``+dirty`` if it has
    uncommitted changes there (``unknown`` outside a git checkout)."""
    import tailext

    where = Path(tailext.__file__).resolve().parent

    def git(*args):
        return subprocess.run(["git", *args], capture_output=True, text=True,
                              cwd=where).stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    return commit + ("+dirty" if git("status", "--porcelain", "--", ".") else "")
