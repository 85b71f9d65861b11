"""Bubblewrap: a read-only system, no network, the label packages and lab state out of sight.

Run as root, bwrap sets up the mounts and the command then drops with setpriv to the sandbox user's
own unprivileged uid (lab/sandbox/users.py): root is exempt from RLIMIT_NPROC, which counts per uid,
so only a uid per agent stops one agent's fork swarm without starving the others and the scorer.
Run as an ordinary user, bwrap uses a user namespace and the user's own limits apply.
"""
from __future__ import annotations

import glob
import os
import shutil
import sys
from pathlib import Path

from lab.errors import SandboxError
from lab.sandbox.base import Bind, Limits, RunResult, passthrough_env, run_limited
from lab.sandbox.cgroups import Cgroups, detect
from lab.sandbox.users import SCORER, slot, uid_of
from lab.config.embedded import LABEL_PACKAGES
from lab.threads import thread_env

SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/etc")


def _python_roots() -> list[Path]:
    """Folders the interpreter needs: its prefixes and the real location of its executable."""
    roots = {Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve(),
             Path(os.path.realpath(sys.executable)).parent.parent}
    return sorted(r for r in roots if not any(r.is_relative_to(s) for s in SYSTEM_DIRS))


def _site_dirs(roots: list[Path]) -> list[Path]:
    found = []
    for root in roots + [Path("/usr"), Path("/usr/local")]:
        found += [*root.glob("lib/python3*/site-packages"), *root.glob("lib/python3*/dist-packages")]
    found += list(Path("/usr/lib").glob("python3*/dist-packages"))
    return sorted(set(found))


def _is_label_entry(name: str) -> bool:
    """A label package's folder or single-module file, or its dist-info / egg-info."""
    return name.split("-")[0].removesuffix(".py").lower().replace(".", "_") in LABEL_PACKAGES


HIDDEN_PACKAGE = str(Path(__file__).with_name("hidden_label_package.py"))


def _cover(path: str) -> list[str]:
    """bwrap arguments that hide what is at path, read-only: a folder behind an empty one whose only file is an
    `__init__.py` that fails the import, as a package not installed would; a module's file behind that file;
    any other file behind an empty one."""
    if os.path.isdir(path):
        init = [] if path.endswith((".dist-info", ".egg-info")) else ["--ro-bind", HIDDEN_PACKAGE, f"{path}/__init__.py"]
        return ["--perms", "0555", "--tmpfs", path, *init, "--remount-ro", path]
    return ["--ro-bind", HIDDEN_PACKAGE if path.endswith(".py") else os.devnull, path]


class BwrapSandbox:
    name = "bwrap"
    trustworthy = True

    def __init__(self, bwrap: str | None = None, user: str = SCORER, cgroups: Cgroups | None = None):
        """`user`: scorer or agent-N, whose uid runs the commands; `cgroups`: None finds what the machine offers."""
        found = bwrap or shutil.which("bwrap")
        if not found:
            raise SandboxError(
                "bubblewrap (bwrap) is not installed: install it (Debian: apt-get install bubblewrap) "
                "or set sandbox = \"none\" in lab.toml, which makes results untrustworthy")
        self.bwrap: str = found
        self.as_root = os.geteuid() == 0
        self.setpriv = shutil.which("setpriv")
        if self.as_root and not self.setpriv:
            raise SandboxError("running as root needs setpriv (util-linux) to drop to an unprivileged user")
        slot(user)
        self.user = user
        self.uid = uid_of(user) if self.as_root else None
        self.cgroups = detect() if cgroups is None else cgroups

    def inside(self, bind: Bind) -> str:
        return bind.inside

    def _dirs_for(self, path: str, made: set[str]) -> list[str]:
        """--dir for every missing ancestor, world-traversable so that the sandbox's uid can pass."""
        args = []
        parts = Path(path).parts
        for i in range(2, len(parts)):
            ancestor = str(Path(*parts[:i]))
            if ancestor not in made:
                made.add(ancestor)
                args += ["--perms", "0755", "--dir", ancestor]
        return args

    def _system_args(self, made: set[str]) -> list[str]:
        args: list[str] = []
        for d in SYSTEM_DIRS:
            p = Path(d)
            if p.is_symlink():
                args += ["--symlink", os.readlink(p), d]
            elif p.is_dir():
                args += ["--ro-bind", d, d]
        roots = _python_roots()
        for root in roots:
            args += self._dirs_for(str(root), made) + ["--ro-bind", str(root), str(root)]
        # A label package's entries are covered where they are (_cover). Binding every other entry of the site
        # folder instead made a mount each (about 230 in this lab's environment), 0.2 s of CPU in every sandbox's
        # start. A sandboxed process cannot take a covering mount away: it has no capabilities, and in a user
        # namespace of its own the mounts it inherits are locked together.
        for site in _site_dirs(roots):
            for entry in sorted(os.listdir(site)):
                if _is_label_entry(entry):
                    args += _cover(os.path.realpath(site / entry))
        return args

    def command(self, argv: list[str], binds: list[Bind], cwd: Bind, limits: Limits,
                env: dict[str, str] | None = None) -> list[str]:
        args = [self.bwrap, "--die-with-parent", "--new-session", "--unshare-pid", "--unshare-net",
                "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try", "--hostname", "sandbox"]
        if not self.as_root:
            args.append("--unshare-user")
        # /tmp first: a Python or a bind that lives under /tmp is then mounted on top of it.
        args += ["--proc", "/proc", "--dev", "/dev", "--perms", "1777"]
        if limits.tmp_mb:
            args += ["--size", str(limits.tmp_mb * 1024 * 1024)]
        args += ["--tmpfs", "/tmp"]
        # GPUs: the device nodes and the driver's view of the machine; CUDA_VISIBLE_DEVICES picks the slice.
        gpu_nodes = sorted(glob.glob("/dev/nvidia*"))
        for node in gpu_nodes:
            args += ["--dev-bind", node, node]
        if gpu_nodes and Path("/sys").is_dir():
            args += ["--ro-bind", "/sys", "/sys"]
        made = {"/tmp"}
        args += self._system_args(made)
        for bind in binds:
            args += self._dirs_for(bind.inside, made)
            args += ["--bind" if bind.writable else "--ro-bind", str(bind.host), bind.inside]
        args += ["--chdir", cwd.inside, "--clearenv"]
        full_env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp", "TMPDIR": "/tmp",
                    "PYTHONDONTWRITEBYTECODE": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                    **passthrough_env(), **thread_env(limits.threads), **(env or {})}
        for key, value in full_env.items():
            args += ["--setenv", key, value]
        if self.as_root:
            assert self.setpriv is not None     # found as it was made (as root it needs one)
            args += ["--", self.setpriv, f"--reuid={self.uid}", f"--regid={self.uid}", "--clear-groups",
                     "--inh-caps=-all", "--bounding-set=-all"]
        else:
            args.append("--")
        return args + argv

    def run(self, argv: list[str], binds: list[Bind], cwd: Bind, limits: Limits,
            env: dict[str, str] | None = None, cancel=None) -> RunResult:
        if self.uid is not None:
            for bind in binds:
                if bind.writable:   # its root only, and never through a symlink: callers hand over what is in it
                    os.chown(bind.host, self.uid, self.uid, follow_symlinks=False)
        return run_limited(self.command(argv, binds, cwd, limits, env), limits, env={"PATH": os.environ["PATH"]},
                           cancel=cancel, cgroups=self.cgroups, user=self.user)

    def hand_over(self, path: Path) -> None:
        """Give path and all below it to the sandbox's uid. Symlinks are changed themselves and never followed,
        and each name is changed relative to its folder's open descriptor, so nothing the sandbox plants in
        the tree, even while this runs, leads outside it. Where uid is None, commands run as ourselves."""
        if self.uid is None:
            return
        path = Path(path)
        os.chown(path, self.uid, self.uid, follow_symlinks=False)
        if path.is_symlink() or not path.is_dir():
            return
        for _, dirs, files, folder in os.fwalk(path, follow_symlinks=False):
            for name in dirs + files:
                try:
                    os.chown(name, self.uid, self.uid, dir_fd=folder, follow_symlinks=False)
                except FileNotFoundError:
                    pass    # removed while we walked
