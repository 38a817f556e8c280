"""Which commit an inventory was planned at (for the pull-request comment)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

#: CI variables that name the commit being built (GitHub Actions, GitLab CI).
COMMIT_VARIABLES = ("GITHUB_SHA", "CI_COMMIT_SHA")


def commit_of(path: Path) -> str | None:
    """The commit checked out at ``path``: from CI's variables, else ``git rev-parse``;
    None outside a repository or without git (a plan without a commit is still a plan)."""
    for name in COMMIT_VARIABLES:
        value = os.environ.get(name, "").strip()
        if value:
            return value
    git = shutil.which("git")
    if git is None:
        return None
    try:
        done = subprocess.run(
            [git, "-C", str(path), "rev-parse", "HEAD"], capture_output=True, text=True,
            timeout=10, check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    value = done.stdout.strip()
    return value if done.returncode == 0 and value else None
