"""The research repository: a bare git repository whose first commit is the scaffold template."""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import git

from lab.scaffold import TEMPLATE

AUTHOR = {"GIT_AUTHOR_NAME": "lab", "GIT_AUTHOR_EMAIL": "lab@localhost",
          "GIT_COMMITTER_NAME": "lab", "GIT_COMMITTER_EMAIL": "lab@localhost"}
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")


# The repository may belong to the sandbox's user (see lab/sandbox/workspace.py): accept it.
SAFE_DIRECTORY = {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "safe.directory", "GIT_CONFIG_VALUE_0": "*"}


def open_repo(path: Path) -> git.Repo:
    repo = git.Repo(path)
    repo.git.update_environment(**SAFE_DIRECTORY)
    return repo


def research_repo_path(state_dir: Path) -> Path:
    return Path(state_dir) / "research.git"


def root_commit(repo: git.Repo) -> str:
    return repo.git.rev_list("--max-parents=0", "main").splitlines()[0]


def create(state_dir: Path, template: Path = TEMPLATE) -> tuple[git.Repo, bool]:
    """Open the research repository, creating it with the scaffold as its first commit if missing."""
    path = research_repo_path(state_dir)
    if path.exists():
        repo = open_repo(path)
        if repo.heads:
            return repo, False
        shutil.rmtree(path)  # a half-made repository from an interrupted init
    staging = Path(tempfile.mkdtemp(prefix=".research-", dir=Path(state_dir)))
    try:
        repo = git.Repo.init(staging / "research.git", bare=True, initial_branch="main")
        with tempfile.TemporaryDirectory() as work:
            shutil.copytree(template, work, dirs_exist_ok=True, ignore=IGNORED)
            with repo.git.custom_environment(GIT_WORK_TREE=work, **AUTHOR):
                repo.git.add("-A")
                repo.git.commit("-m", "scaffold: weak-to-strong building blocks and baseline methods")
        (staging / "research.git").rename(path)  # appears whole or not at all
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return open_repo(path), True
