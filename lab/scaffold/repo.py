"""The research repository: a bare git repository whose first commit is the scaffold template.

Only the lab writes it. Agents see it read-only inside their sandboxes (their own repositories
borrow its objects as alternates), and their commits enter it only through `accept_bundle`: a git
bundle, which is data, fetched with every object checked, onto the agent's own branch and nothing
else. So its config, hooks and info/ files, the only files git executes from, are the lab's.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from lab.errors import Blocked, GitError
from lab.scaffold import TEMPLATE
from lab.scaffold.publish_check import PublishLimits, check_bundle
from lab.scaffold.safegit import SafeGit, check_ref
from lab.state_layout import StateLayout

AUTHOR = {"GIT_AUTHOR_NAME": "lab", "GIT_AUTHOR_EMAIL": "lab@localhost",
          "GIT_COMMITTER_NAME": "lab", "GIT_COMMITTER_EMAIL": "lab@localhost"}
# The scaffold's commit is a function of its files: a research repository made again (a copied testbed, a
# lab whose repository was removed) gets the same root commit, so the ceilings fixed for it stay valid.
SCAFFOLD_DATE = {"GIT_AUTHOR_DATE": "2026-01-01T00:00:00+0000", "GIT_COMMITTER_DATE": "2026-01-01T00:00:00+0000"}
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")
CONFIG = """\
[core]
\trepositoryformatversion = 0
\tfilemode = true
\tbare = true
\tsharedRepository = 0644
[gc]
\tauto = 0
[transfer]
\tfsckObjects = true
"""
# Files and folders of a repository from which git runs programs or changes what it reads.
UNTRUSTED_ENTRIES = ("hooks", "info/attributes", "info/grafts", "info/sparse-checkout", "objects/info/alternates",
                     "objects/info/http-alternates", "worktrees", "commondir", "refs/replace", "modules", "branches",
                     "remotes", "description")
PINS = "refs/lab/scored"
POSTED = "refs/lab/posted"     # commits a forum post names: kept for its readers, as scored ones are


def research_repo_path(state_dir: Path) -> Path:
    return StateLayout(Path(state_dir)).research_repo


def open_repo(path: Path) -> SafeGit:
    return SafeGit(path)


def root_commit(repo: SafeGit) -> str:
    return repo.text("rev-list", "--max-parents=0", "refs/heads/main").splitlines()[0]


def _own_tree(path: Path) -> None:
    """Take back a tree that an older lab handed to the sandbox's user, never following a link in it."""
    me, group = os.geteuid(), os.getegid()
    os.chown(path, me, group, follow_symlinks=False)
    for _, dirs, files, folder in os.fwalk(path, follow_symlinks=False):
        for name in dirs + files:
            os.chown(name, me, group, dir_fd=folder, follow_symlinks=False)


def harden(path: Path) -> None:
    """Make the repository's executable surface the lab's own again: config rewritten, hooks and the other
    entries that make git run or read elsewhere removed, everything owned by the lab's user."""
    path = Path(path)
    if path.lstat().st_uid != os.geteuid() or (path / "objects").lstat().st_uid != os.geteuid():
        _own_tree(path)
    config = path / "config"
    if not config.is_file() or config.is_symlink() or config.read_text() != CONFIG:
        fresh = path / f"config.lab-{os.getpid()}"
        fresh.write_text(CONFIG)
        os.replace(fresh, config)
    for entry in UNTRUSTED_ENTRIES:
        target = path / entry
        if entry == "hooks" and target.is_dir() and not target.is_symlink() and not any(target.iterdir()):
            continue
        if target.is_symlink() or target.is_file():
            target.unlink(missing_ok=True)
        elif target.is_dir():
            shutil.rmtree(target, ignore_errors=True)
    (path / "hooks").mkdir(mode=0o755, exist_ok=True)
    if path.stat().st_mode & 0o777 != 0o755:
        os.chmod(path, 0o755)


def create(state_dir: Path, template: Path = TEMPLATE) -> tuple[SafeGit, bool]:
    """Open the research repository, creating it with the scaffold as its first commit if missing."""
    path = research_repo_path(state_dir)
    if path.exists():
        repo = open_repo(path)
        if (path / "objects").is_dir() and repo.commit_of("main"):
            harden(path)
            return repo, False
        shutil.rmtree(path)  # a half-made repository from an interrupted init
    staging = Path(tempfile.mkdtemp(prefix=".research-", dir=Path(state_dir)))
    try:
        made = staging / path.name
        made.mkdir()
        repo = SafeGit(made)
        repo.run("init", "-q", "--bare", "--initial-branch=main")
        harden(made)
        with tempfile.TemporaryDirectory() as work:
            # symlinks=False: a link that ever came into a template would arrive as its file, never as a link
            shutil.copytree(template, Path(work) / "tree", ignore=IGNORED, symlinks=False)
            index = {"GIT_WORK_TREE": str(Path(work) / "tree"), "GIT_INDEX_FILE": str(Path(work) / "index")}
            repo.run("add", "-A", env=index)
            tree = repo.text("write-tree", env=index).strip()
        sha = repo.text("commit-tree", tree, "-m", "scaffold: weak-to-strong building blocks and baseline methods",
                        env={**AUTHOR, **SCAFFOLD_DATE}).strip()
        repo.update_ref("refs/heads/main", sha)
        repo.run("symbolic-ref", "HEAD", "refs/heads/main")
        os.chmod(staging, 0o755)
        made.rename(path)  # appears whole or not at all
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return open_repo(path), True


def pin(repo: SafeGit, sha: str) -> None:
    """Keep a scored commit, whatever later happens to the branch it came from."""
    repo.update_ref(f"{PINS}/{sha}", sha)


def keep_posted(repo: SafeGit, sha: str) -> None:
    """Keep a commit a forum post names, whatever later happens to its branch (the scheduled prune spares it)."""
    repo.update_ref(f"{POSTED}/{sha}", sha)


def accept_bundle(repo: SafeGit, bundle: Path | None, branch: str, head: str,
                  limits: PublishLimits = PublishLimits()) -> bool:
    """Move `branch` (an agent's own) to `head`, fetching the bundle's objects first when the repository lacks
    the commit: each of them measured against the limits before git takes any (PublishRefused past them). True
    when the branch moved."""
    check_ref(branch)
    if repo.heads().get(branch) == head:
        return False
    if not repo.has_commit(head):
        if bundle is None:
            raise Blocked(f"commit {head[:10]} is neither in the research repository nor in the bundle of your branch")
        check_bundle(bundle, limits, lambda ids: {oid: kind for oid, (kind, _) in repo.object_info(ids).items()})
        incoming = f"refs/lab/incoming/{branch}"
        try:
            repo.run("fetch", "--no-tags", "--no-write-fetch-head", "--no-recurse-submodules", "-q", str(bundle),
                     f"+HEAD:{incoming}", allow_file_protocol=True)
        except GitError as exc:
            raise Blocked(f"your branch's objects were refused by the research repository: {exc}") from None
        finally:
            repo.run("update-ref", "-d", incoming, check=False)
        if not repo.has_commit(head):
            raise Blocked(f"the bundle of your branch does not hold its head {head[:10]}")
    repo.update_ref(f"refs/heads/{branch}", head)
    return True
