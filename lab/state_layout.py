"""Every path of the lab's state folder (lab.toml's [lab] state_dir, `.lab` by default), named here and nowhere else:
the rest of the lab takes its paths from a StateLayout (a config's `state`). The testbed's files inside data/ and
private/, one folder per dataset, are the testbed's own (lab.task.testbed). Light, so that `lab status` imports it.

    lab.db              the database (lab.store)
    research.git/       the research repository the agents publish to (lab.scaffold.repo)
    data/               the agents' view of the dev dataset (lab.task.testbed)
    private/            what no agent sees: the testbed's private sets and manifest, the scorer's and the oracle's keys
    cache/              the validated lab.toml (lab.config.cache), strong features, the hf kind's datasets
    disks/              the agents' disk images (lab.sandbox.disk_quota)
    run/                what a running lab keeps: its processes' pid and lock files, logs, heartbeats (RunFolder)
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RunFolder:
    """`<state>/run`: the files of a running lab."""
    root: Path

    # ---- the lab's processes: their pid and lock files (lab.agents.pidfiles, lab.agents.locks) ----------------------
    @property
    def supervisor_lock(self) -> Path:
        """Held by the supervisor for its whole life; holds its pid."""
        return self.root / "supervisor.lock"

    @property
    def start_lock(self) -> Path:
        """Held by `lab start` until the supervisor it started is ready."""
        return self.root / "start.lock"

    @property
    def supervisor_pid(self) -> Path:
        """Written last as the supervisor starts: its presence means "ready"."""
        return self.root / "supervisor.pid"

    @property
    def zygote_pid(self) -> Path:
        return self.root / "zygote.pid"

    @property
    def runners(self) -> Path:
        """The runners' pid files, one per agent."""
        return self.root / "runners"

    def runner_pid(self, agent: str) -> Path:
        return self.runners / f"{agent}.pid"

    def runner_pid_files(self) -> list[Path]:
        return sorted(self.runners.glob("*.pid"))

    # ---- logs and heartbeats ---------------------------------------------------------------------------------------
    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def agent_log(self, agent: str) -> Path:
        return self.logs / f"{agent}.log"

    @property
    def supervisor_log(self) -> Path:
        return self.root / "supervisor.log"

    @property
    def supervisor_beat(self) -> Path:
        return self.root / "supervisor.beat"

    @property
    def scorer_beat(self) -> Path:
        """The scorer queue's heartbeat."""
        return self.root / "scorer-queue.beat"

    # ---- the scorer ------------------------------------------------------------------------------------------------
    @property
    def scorer_url(self) -> Path:
        return self.root / "scorer.url"

    @property
    def scorer_queue_lock(self) -> Path:
        """Held by the one scorer that scores the lab's queue."""
        return self.root / "scorer-queue.lock"

    @property
    def method_runs(self) -> Path:
        """The scorer's scratch: a folder per submission and per method run while they last."""
        return self.root / "scorer"

    def run_outputs(self, run_id: int) -> Path:
        """An agent's `run`: its outputs, until the agent's runner copies them into its worktree."""
        return self.root / "agent-runs" / str(run_id)

    @property
    def gpu_queue(self) -> Path:
        """The scorer's GPU queue as it last wrote it (lab.scorer.gpus)."""
        return self.root / "gpu_queue.json"

    @property
    def cluster(self) -> Path:
        """Where method runs execute, as the engine last wrote it (lab.scorer.cluster_view)."""
        return self.root / "cluster.json"

    # ---- the agents' publishing ------------------------------------------------------------------------------------
    @property
    def agent_gitconfig(self) -> Path:
        """The agents' global git config, written by the lab."""
        return self.root / "agent.gitconfig"

    @property
    def exports(self) -> Path:
        """Where a publish's bundle is made (a temporary folder each), the run folder itself."""
        return self.root


@dataclass(frozen=True)
class StateLayout:
    root: Path

    @classmethod
    def of_research_repo(cls, repo: Path) -> "StateLayout":
        """The layout of the state folder that holds this research repository."""
        return cls(Path(repo).parent)

    @property
    def db(self) -> Path:
        return self.root / "lab.db"

    @property
    def research_repo(self) -> Path:
        return self.root / "research.git"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def private(self) -> Path:
        return self.root / "private"

    @property
    def testbed_manifest(self) -> Path:
        return self.private / "testbed.json"

    @property
    def scorer_key(self) -> Path:
        """The key the agents' scorer tokens are derived from (lab.scorer.auth)."""
        return self.private / "scorer.key"

    @property
    def oracle_key(self) -> Path:
        """The key of the fixed noise on what agents are told (lab.scorer.oracle)."""
        return self.private / "oracle.key"

    @property
    def cache(self) -> Path:
        return self.root / "cache"

    @property
    def config_cache(self) -> Path:
        return self.cache / "config.json"

    @property
    def features_cache(self) -> Path:
        return self.cache / "features"

    @property
    def hf_cache(self) -> Path:
        return self.cache / "hf"

    @property
    def disks(self) -> Path:
        return self.root / "disks"

    @property
    def run(self) -> RunFolder:
        return RunFolder(self.root / "run")
