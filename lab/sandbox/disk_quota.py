"""Each agent's disk quota (agents.disk_mb): what its worktree, its repository's objects and its files may hold.

"loop": the kernel holds it. Each agent's worktree is a filesystem of its own, an ext4 image file of exactly the
quota's size, allocated whole when it is made (so that a full state disk never fails a write under the agent's
filesystem), loop-mounted at sandboxes/agent-N before
the worktree is made. A write past it fails with ENOSPC inside the agent's sandbox, and only there: the state disk,
the store and the other agents never see it. It needs root (mount) and loop devices.

"measured": where the machine cannot mount (not root, no loop devices, a container that forbids mount), the worktree
is measured (a walk bounded in time) before each tool call that writes, and the call is refused while it holds more
than the quota. That holds only after the fact: one shell command can still write past the quota (up to
agents.shell_file_mb a file) before the next call is refused. `lab start` warns of it.

"auto" is "loop" where it works, else "measured"; "off" is no quota. The images stay in <state>/disks; the lab
mounts them as it starts and unmounts them when it stops (`lab stop`).
"""
from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lab.errors import LabError, SandboxError, StateDiskFull
from lab.state_layout import StateLayout

if TYPE_CHECKING:
    from lab.settings import Settings

# noinit_itable: no background zeroing of the image's inode tables
REPAIR_ROOM_BYTES = 64 << 20   # free space on the state disk before a disk made read-only by a full one is repaired
MOUNT_OPTIONS = "loop,nosuid,nodev,noinit_itable"   # no discard: it would punch holes in the image
# No blocks reserved for root, tables left unwritten: mkfs writes a few MB into the image's reserved space.
MKFS = ["mkfs.ext4", "-q", "-F", "-m", "0"]
MKFS_EXTENDED = "lazy_itable_init=1,lazy_journal_init=1,nodiscard"   # nodiscard: mkfs would punch the image's holes back
MEASURE_BUDGET_S = 1.0
TOOLS = ("mount", "umount", "mkfs.ext4", "e2fsck", "resize2fs")


class DiskQuotaError(SandboxError):
    """An agent's disk cannot be made or mounted where lab.toml asks for one (agents.disk_quota = "loop")."""


class DiskQuotaExceeded(LabError):
    """An agent's worktree holds its quota: what it asked for was not written. Its own doing, not the lab's."""


def images_dir(state_dir: Path) -> Path:
    return StateLayout(Path(state_dir)).disks


def mounted_source(path: Path) -> str | None:
    """The device or image mounted at path, None where nothing is (/proc/self/mountinfo)."""
    target = os.path.realpath(path)
    found = None
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        fields = line.split(" ")
        if _unescape(fields[4]) == target:
            found = _unescape(fields[fields.index("-") + 2])   # the last mount on top is the one seen
    return found


def mounts_under(folder: Path) -> list[Path]:
    """Every mount point at or below folder, deepest first."""
    root = os.path.realpath(folder)
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = _unescape(line.split(" ")[4])
        if point == root or point.startswith(root + "/"):
            points.append(Path(point))
    return sorted(set(points), key=lambda p: len(p.parts), reverse=True)


def _unescape(field: str) -> str:
    """mountinfo writes a space, tab, newline or backslash of a path as an octal escape (\\040)."""
    return re.sub(r"\\([0-7]{3})", lambda match: chr(int(match.group(1), 8)), field)


def loop_unavailable() -> str | None:
    """Why this machine cannot give each agent a filesystem of its own; None where it can."""
    if os.geteuid() != 0:
        return "the lab does not run as root, so it cannot mount"
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        return f"{', '.join(missing)} not installed"
    if not Path("/dev/loop-control").exists():
        return "no loop devices (/dev/loop-control)"
    return None


@dataclass(frozen=True)
class AgentDisk:
    name: str
    worktree: Path
    image: Path
    quota_bytes: int
    mode: str         # what holds the quota: "loop", "measured" or "off"

    @property
    def quota_mb(self) -> int:
        return self.quota_bytes >> 20

    def used_bytes(self, budget_s: float = MEASURE_BUDGET_S) -> tuple[int, bool]:
        """Bytes the worktree holds, and whether that is all of them (a walk past its time budget is a lower bound)."""
        if self.mode == "loop" and mounted_source(self.worktree) is not None:
            fs = os.statvfs(self.worktree)   # what is not free counts, the filesystem's own structures included
            return max(0, self.quota_bytes - fs.f_bavail * fs.f_frsize), True
        if self.mode == "loop" and self.image.exists():     # not mounted (the lab is stopped): what the image holds
            return _image_used(self.image), True
        return measure(self.worktree, budget_s)

    def full_message(self, used: int | None = None) -> str:
        held = f" ({used / 2**20:.0f} MB used)" if used is not None else ""
        return (f"your disk quota is full: your worktree may hold {self.quota_mb} MB (agents.disk_mb){held}, "
                "its git objects and the filesystem's own structures included; nothing more was written. Free space "
                "by deleting files you no longer need (`du -sh * .git | sort -h` shows what is large; "
                "`rm -rf runs/old`); objects of commits you dropped go with "
                "`git reflog expire --expire=now --all && git gc --prune=now`")

    def nearly_full(self) -> bool:
        """Within 1% (at least 1 MB) of the quota: a command that ran out of space ran out of this."""
        used, _ = self.used_bytes()
        return used >= self.quota_bytes - max(1 << 20, self.quota_bytes // 100)

    def over(self) -> str | None:
        """Measured quotas: what to tell the agent while its worktree holds more than its quota; else None."""
        if self.mode != "measured":
            return None
        used, _ = self.used_bytes()
        return self.full_message(used) if used > self.quota_bytes else None

    def check_mounted(self) -> None:
        """Loop: the kernel holds the quota once the disk is mounted (DiskQuotaError, the lab's fault, where not), and
        a disk the kernel made read-only is repaired first (repair_read_only)."""
        if self.mode == "loop" and mounted_source(self.worktree) is None:
            raise DiskQuotaError(f"{self.name}'s disk is not mounted at {self.worktree} (unmounted by hand?): "
                                 f"`lab stop {self.name}` then `lab start {self.name}` mounts it again")
        if self.mode == "loop":
            repair_read_only(self)

    def check(self) -> None:
        """Before a tool call that writes: DiskQuotaExceeded while a measured worktree holds more than its quota."""
        self.check_mounted()
        full = self.over()
        if full is not None:
            raise DiskQuotaExceeded(full)


def _image_used(image: Path) -> int:
    """The bytes an unmounted image's filesystem uses, from its superblock (the image itself is allocated whole)."""
    head = _run(["dumpe2fs", "-h", str(image)]).stdout if shutil.which("dumpe2fs") else ""
    fields = dict(line.split(":", 1) for line in head.splitlines() if ":" in line)
    try:
        count, free, size = (int(fields[key].strip()) for key in ("Block count", "Free blocks", "Block size"))
    except (KeyError, ValueError):
        return os.stat(image).st_blocks * 512
    return (count - free) * size


def measure(folder: Path, budget_s: float = MEASURE_BUDGET_S) -> tuple[int, bool]:
    """Bytes allocated below folder (sparse files count what they take), never following a link nor leaving its
    filesystem; (bytes, complete), stopping with what it has once budget_s is spent."""
    deadline = time.monotonic() + budget_s
    try:
        top = os.lstat(folder)
    except OSError:
        return 0, True
    total, stack = top.st_blocks * 512, [str(folder)]
    while stack:
        if time.monotonic() > deadline:
            return total, False
        try:
            entries = os.scandir(stack.pop())
        except OSError:
            continue                     # removed, or not ours to read: what we can see is counted
        with entries:
            for entry in entries:
                try:
                    info = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                if info.st_dev != top.st_dev:
                    continue
                total += info.st_blocks * 512
                if stat.S_ISDIR(info.st_mode):
                    stack.append(entry.path)
    return total, True


def resolve_mode(setting: str) -> tuple[str, str | None]:
    """The mode that holds the quotas on this machine, and a warning to show where it is weaker than asked."""
    if setting in ("off", "measured"):
        return setting, ("agents.disk_quota = \"measured\": each worktree is measured before each writing tool call, "
                         "so a quota holds only after the fact" if setting == "measured" else None)
    why = loop_unavailable()
    if why is None:
        return "loop", None
    if setting == "loop":
        raise DiskQuotaError(f"agents.disk_quota = \"loop\" needs a filesystem per agent, and {why}: set "
                             "disk_quota = \"measured\" (enforced only after the fact) or \"auto\"")
    return "measured", (f"agents' disk quotas are only measured, after the fact ({why}): one shell command can write "
                        "past agents.disk_mb before the next is refused (docs/sandbox.md: disk quotas)")


def disk_of(cfg: Settings, name: str, mode: str | None = None) -> AgentDisk:
    """An agent's disk as lab.toml sets it. `mode` None: as it holds now ("auto": loop where its disk is mounted, as
    the lab mounted it at its start, else measured)."""
    if mode is None:
        mode = cfg.agents.disk_quota
        if mode == "auto":
            mode = "loop" if mounted_source(Path(cfg.sandboxes_dir) / name) else "measured"
    return AgentDisk(name, Path(cfg.sandboxes_dir) / name, images_dir(cfg.state_dir) / f"{name}.img",
                     int(cfg.agents.disk_mb) << 20, mode)


# ---- loop-mounted disks ----------------------------------------------------------------------------------
def _run(argv: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                          env={"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), "LC_ALL": "C"})


def _must(argv: list[str], what: str) -> None:
    done = _run(argv)
    if done.returncode != 0:
        raise DiskQuotaError(f"{what}: {argv[0]} failed: {(done.stderr or done.stdout).strip()[-300:]}")


def _reserve(path: Path, size: int) -> None:
    """Allocate every byte of the image now. An image with holes takes space from the state disk as its agent
    writes; while that disk is full, a write into a hole fails under the agent's filesystem, which then loses file
    contents (chaos seed 1: six agents' git index files came back corrupt) or goes read-only. A quota is a
    reservation: an agent's disk never competes for the state disk's last bytes."""
    with open(path, "ab") as out:
        os.posix_fallocate(out.fileno(), 0, size)


def _make_image(disk: AgentDisk, owner: int) -> None:
    disk.image.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(disk.image.parent, 0o700)       # the images are the lab's: no agent reads another's through them
    partial = disk.image.with_suffix(".img.new")
    partial.unlink(missing_ok=True)
    try:
        _reserve(partial, disk.quota_bytes)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise DiskQuotaError(f"{disk.name}'s disk of {disk.quota_mb} MB does not fit on the state disk "
                             f"({exc.strerror}): lower agents.disk_mb, or free space") from None
    _must([*MKFS, "-E", f"{MKFS_EXTENDED},root_owner={owner}:{owner}", str(partial)], f"making {disk.name}'s disk")
    os.replace(partial, disk.image)


def _loops_of(image: Path) -> list[str]:
    listed = _run(["losetup", "--associated", str(image), "--noheadings", "--output", "NAME"])
    return listed.stdout.split()


def _release_loops(image: Path, timeout_s: float = 10.0) -> None:
    """Wait until no loop device is backed by the image any more, detaching those left. umount hands a loop device
    back a moment after it returns, still writing the image meanwhile; and mount reuses a device already set up for
    the same file, at the size the image had then. So an image is checked, grown or mounted only once its last loop
    device is gone."""
    if shutil.which("losetup") is None:
        return
    deadline = time.monotonic() + timeout_s
    while devices := _loops_of(image):
        for device in devices:
            _run(["losetup", "--detach", device])
        if time.monotonic() > deadline:
            raise DiskQuotaError(f"{image} is still held by {', '.join(devices)} after {timeout_s:g} s")
        time.sleep(0.05)


def _mount(image: Path, at: Path, what: str) -> None:
    _release_loops(image)
    _must(["mount", "-o", MOUNT_OPTIONS, str(image), str(at)], what)
    lost = at / "lost+found"   # e2fsck makes it again where it needs one; in a worktree it is only in the way
    if lost.is_dir() and not lost.is_symlink() and not any(lost.iterdir()):
        lost.rmdir()


def ensure_mounted(disk: AgentDisk, owner: int | None) -> None:
    """The agent's disk, made where missing and mounted at its worktree (already mounted: nothing to do). A worktree
    made before it had a disk is moved onto it (DiskQuotaError where it holds more than the quota)."""
    if mounted_source(disk.worktree) is not None:
        return
    owner = os.getuid() if owner is None else owner
    folder = disk.worktree
    if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
        raise DiskQuotaError(f"{folder} is not a folder: move it away")
    folder.mkdir(parents=True, exist_ok=True)
    fresh = not disk.image.exists()
    if fresh:
        _make_image(disk, owner)
    elif os.stat(disk.image).st_size < disk.quota_bytes:
        _grow(disk)
    if fresh and any(folder.iterdir()):
        _move_onto_image(disk)
    _mount(disk.image, folder, f"mounting {disk.name}'s disk at {folder}")


def _grow(disk: AgentDisk) -> None:
    """A disk made before agents.disk_mb was raised grows to it (a lowered one keeps its size: shrinking could lose
    what the agent wrote)."""
    _release_loops(disk.image)
    try:
        _reserve(disk.image, disk.quota_bytes)
    except OSError as exc:
        raise DiskQuotaError(f"{disk.name}'s disk cannot grow to {disk.quota_mb} MB on the state disk "
                             f"({exc.strerror}): lower agents.disk_mb, or free space") from None
    checked = _run(["e2fsck", "-f", "-p", str(disk.image)])
    if checked.returncode > 1:     # 1: errors found and fixed
        raise DiskQuotaError(f"{disk.name}'s disk {disk.image} has errors e2fsck cannot fix by itself: "
                             f"{(checked.stderr or checked.stdout).strip()[-300:]}")
    _must(["resize2fs", str(disk.image)], f"growing {disk.name}'s disk to {disk.quota_mb} MB")


def _move_onto_image(disk: AgentDisk) -> None:
    """Copy what an older worktree holds onto the fresh image, then empty the folder the image is mounted on."""
    staging = disk.image.with_suffix(".mnt")
    staging.mkdir(exist_ok=True)
    _mount(disk.image, staging, f"mounting {disk.name}'s new disk")
    try:
        copied = _run(["cp", "-a", "--no-dereference", f"{disk.worktree}/.", f"{staging}/"])
    finally:
        _must(["umount", str(staging)], f"unmounting {disk.name}'s new disk")
        staging.rmdir()
    if copied.returncode != 0:
        disk.image.unlink()
        raise DiskQuotaError(f"{disk.worktree} could not move onto a disk of agents.disk_mb = {disk.quota_mb} MB "
                             f"({copied.stderr.strip()[-200:]}): raise disk_mb, or free space in it")
    for entry in os.scandir(disk.worktree):
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path)
        else:
            os.unlink(entry.path)


def read_only(path: Path) -> bool:
    """Whether the filesystem mounted at path only reads: mounted so, or made so by the kernel (ext4 aborts its
    journal and goes "emergency_ro" when its device fails a write)."""
    return read_only_in(Path("/proc/self/mountinfo").read_text(), os.path.realpath(path))


def read_only_in(mountinfo: str, target: str) -> bool:
    options = None
    for line in mountinfo.splitlines():
        fields = line.split(" ")
        if _unescape(fields[4]) == target:
            options = fields[5].split(",") + fields[-1].split(",")    # the mount's own, then the filesystem's
    return options is not None and ("ro" in options or "emergency_ro" in options)


def repair_read_only(disk: AgentDisk) -> None:
    """ext4 aborts its journal and goes read-only for good when its device fails a write (an image made before
    images were allocated whole, with holes, on a state disk that filled). Once the state disk has room again, such a disk is unmounted, checked (e2fsck fixes what the aborted journal left) and mounted
    again. Between tool calls nothing of the agent holds it; while the state disk is still full, StateDiskFull (a
    fault of the lab's: the tool call can be made again)."""
    if not read_only(disk.worktree):
        return
    free = shutil.disk_usage(disk.image.parent).free
    if free < REPAIR_ROOM_BYTES:
        raise StateDiskFull(f"{disk.name}'s disk went read-only while the state disk was full, and the state disk "
                            f"still has only {free >> 20} MB free: it is repaired once space returns")
    if _run(["umount", str(disk.worktree)]).returncode != 0:
        raise DiskQuotaError(f"{disk.name}'s disk went read-only and is busy, so it cannot be repaired yet")
    _release_loops(disk.image)
    checked = _run(["e2fsck", "-f", "-y", str(disk.image)])
    if checked.returncode > 2:       # 1: errors fixed, 2: fixed, reboot advised (not for an image)
        raise DiskQuotaError(f"{disk.name}'s disk went read-only and e2fsck could not repair it: "
                             f"{(checked.stderr or checked.stdout).strip()[-300:]}")
    _mount(disk.image, disk.worktree, f"mounting {disk.name}'s repaired disk")


def unmount(path: Path) -> None:
    """Unmount what is mounted at path; one that is busy goes once its last user leaves (its loop device with it)."""
    if _run(["umount", str(path)]).returncode != 0 and mounted_source(path) is not None:
        _must(["umount", "--lazy", str(path)], f"unmounting {path}")


def unmount_lab(cfg: Settings) -> list[str]:
    """Unmount every agent's disk of this lab (at `lab stop`); the names of those unmounted."""
    images = images_dir(cfg.state_dir)
    done = []
    for name in cfg.agents.names:
        worktree = Path(cfg.sandboxes_dir) / name
        source = mounted_source(worktree)
        if source is not None and (source.startswith("/dev/loop") or source.startswith(str(images))):
            if _image_of(source) in (None, str(images / f"{name}.img")):
                unmount(worktree)
                done.append(name)
    return done


def _image_of(device: str) -> str | None:
    """The file behind a loop device, None where it cannot be told."""
    try:
        return Path(f"/sys/block/{Path(device).name}/loop/backing_file").read_text().strip()
    except OSError:
        return None
