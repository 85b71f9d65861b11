"""Telling a hung run from a slow one: a run makes progress while it uses CPU time or waits for a CPU (runnable on a
busy machine, which gave the CPU to others: the scheduler's run_delay of its threads, /proc/PID/task/TID/schedstat),
or, where it holds a GPU, while the device is busy with its processes. A run that makes none for its stall window is
hung, and is ended long before the wall-clock backstop.

No progress means under MIN_CPU_SHARE of one core over the window, CPU used and CPU waited for together: a run that
sleeps, waits on a lock or a pipe, or wakes now and then for a moment to look alive. A run starved by a busy machine
is not hung: the scorer's runs are lowered below the person's and the agents' work, and on a loaded machine a healthy
run was measured using under 1% of a core for 17 s while it waited for one (bench/bench_stall.py). The window itself (`[scorer] stall_s`) was measured:
bench/bench_stall.py runs the lab's baselines beside busy processes and reports the longest stretch in which a
healthy run used less than that; the window is many times it.

A run on a GPU waits on the device: its host thread can block in a CUDA synchronisation, using no CPU, while one
long kernel runs, and loading a large model from disk is mostly waiting too. So it gets a window of its own,
`gpu_stall_s`, and before it is ended as hung the device is asked (`nvidia-smi pmon`) whether any of the run's
processes is using it right now; if one is, that counts as progress and the window starts afresh. Where the device
cannot be asked (no nvidia-smi, a MIG slice that pmon does not report), the CPU rule alone decides, over the GPU
window.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections import deque
from typing import Callable

MIN_CPU_SHARE = 0.01       # of one core, over the window: less is no progress
PMON_TIMEOUT_S = 10.0


def gpu_busy_pids(gpu: str) -> set[int] | None:
    """The processes that nvidia-smi's next sample sees computing on the GPU (SM use above 0); None where it cannot
    tell. One sample takes about a second."""
    tool = shutil.which("nvidia-smi")
    if tool is None:
        return None
    try:
        found = subprocess.run([tool, "pmon", "-c", "1", "-s", "u", "-i", gpu], capture_output=True, text=True,
                               timeout=PMON_TIMEOUT_S, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if found.returncode != 0:
        return None
    busy = set()
    for line in found.stdout.splitlines():
        fields = line.split()     # gpu pid type sm mem enc dec ... command
        if line.startswith("#") or len(fields) < 4 or not fields[1].isdigit():
            continue
        if fields[3].isdigit() and int(fields[3]) > 0:
            busy.add(int(fields[1]))
    return busy


def runqueue_waits(pids: set[int]) -> dict[int, float]:
    """Seconds each thread of these processes has waited on a run queue for a CPU, by thread id."""
    waits = {}
    for pid in pids:
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue       # it ended while we looked
        for tid in tids:
            try:
                with open(f"/proc/{pid}/task/{tid}/schedstat") as handle:
                    waits[int(tid)] = int(handle.read().split()[1]) / 1e9
            except (OSError, IndexError, ValueError):
                continue
    return waits


class StallWatch:
    """Told the run's CPU time on every poll: `hung()` says whether it has made no progress for the last `window_s`."""

    def __init__(self, window_s: float, gpu: str | None = None, processes: Callable[[], set[int]] = set):
        """`gpu`: the device the run holds, if any; `processes`: the run's pids, as the device would name them."""
        self.window_s, self.gpu, self.processes = window_s, gpu, processes
        self.samples: deque[tuple[float, float]] = deque()    # (time, CPU seconds used and waited for), the
                                                              # oldest one window back
        self.used_s = 0.0           # CPU time used and waited for over the last window, when last looked at
        self.waits: dict[int, float] = {}    # each thread's wait for a CPU so far, by thread id
        self.waited_s = 0.0         # all the run's threads' waits for a CPU, those of threads gone included
        self.gpu_seen = False       # the device was asked, and said whether the run used it

    def hung(self, cpu: float) -> bool:
        now = time.monotonic()
        cpu += self._waited()
        self.samples.append((now, cpu))
        while len(self.samples) > 1 and self.samples[1][0] <= now - self.window_s:
            self.samples.popleft()
        since, before = self.samples[0]
        if now - since < self.window_s:
            return False                # watched for less than a window so far
        self.used_s = cpu - before
        if self.used_s >= MIN_CPU_SHARE * self.window_s:
            return False
        if self.gpu is not None and self._device_busy(self.gpu):
            self.samples.clear()        # working on the device: a fresh window from now
            self.samples.append((now, cpu))
            return False
        return True

    def _waited(self) -> float:
        for tid, waited in runqueue_waits(self.processes()).items():
            self.waited_s += max(0.0, waited - self.waits.get(tid, 0.0))
            self.waits[tid] = waited
        return self.waited_s

    def _device_busy(self, gpu: str) -> bool:
        busy = gpu_busy_pids(gpu)
        if busy is None:
            return False
        self.gpu_seen = True
        return bool(busy & self.processes())

    def describe(self) -> str:
        """Why the run was ended, in a line's middle."""
        device = " and none of its processes used its GPU" if self.gpu_seen else ""
        return (f"it used, or waited for, {self.used_s:.2f} s of CPU time in the last {self.window_s:g} s{device} (a "
                f"run must use, or wait for, at least {MIN_CPU_SHARE:.0%} of a core over that window)")
