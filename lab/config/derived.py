"""Values derived from lab.toml's settings, shared by the validated Config (lab.config.schema, pydantic) and the plain
record a read-only command gets from the validated-config cache (lab.config.cache), which loads no pydantic.

Each class here is mixed into a section of both; it reads only its section's settings (and `model_fields_set`,
which both provide), so that the two can never disagree on what a setting means. What each reads is its `self`'s
type, from lab.settings.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lab.settings import AgentsSettings, ScorerSettings, Settings, TaskSettings

from lab.state_layout import StateLayout


class LabPaths:
    """Where the lab's state and the agents' worktrees are (of Config: its `root` and its `lab` section)."""

    @property
    def state_dir(self: Settings) -> Path:
        return (self.root / self.lab.state_dir).resolve()

    @property
    def state(self: Settings) -> StateLayout:
        """Every path in the state folder."""
        return StateLayout(self.state_dir)

    @property
    def run_dir(self: Settings) -> Path:
        return self.state.run.root

    @property
    def sandboxes_dir(self: Settings) -> Path:
        return (self.root / "sandboxes").resolve()


class AgentNames:
    """The agents' names and directions (of the `agents` section)."""

    def direction(self: AgentsSettings, index: int) -> str:
        return self.directions[index % len(self.directions)]

    @property
    def names(self: AgentsSettings) -> list[str]:
        return [f"agent-{i}" for i in range(1, self.count + 1)]


PRIVATE_SUFFIX = "_private"


class TaskDatasets:
    """The dev dataset first, then the held-out ones (of the `task` section); and the sets the scorer scores.

    The dev dataset is split twice: its public part is what agents see and `evaluate` answers on; its private
    replica (fresh train and test texts from the same source, labelled by the same teacher) is what ranks
    submissions. No agent ever sees a text, id or label of the replica, nor of a held-out set."""

    @property
    def datasets(self: TaskSettings) -> list[str]:
        return [self.dev, *self.heldout]

    @property
    def private(self: TaskSettings) -> str:
        """The name of the dev dataset's private replica."""
        return self.dev + PRIVATE_SUFFIX

    @property
    def scored(self: TaskSettings) -> list[str]:
        """Every set a submission is scored on: the public dev set, its private replica, the held-out sets."""
        return [self.dev, self.private, *self.heldout]

    @property
    def checked(self: TaskSettings) -> list[str]:
        """The sets of the teacher check: those the method has never seen, each with a second teacher."""
        return [self.private, *self.heldout]


class RunLimits:
    """The limits of one method run (of the `scorer` section)."""

    @property
    def cpu_limit_s(self: ScorerSettings) -> float | None:
        """The CPU-time limit of one method run; None where only the old timeout_s is set (wall clock alone)."""
        legacy = self.timeout_s is not None and "run_cpu_s" not in self.model_fields_set
        return None if legacy else self.run_cpu_s

    @property
    def wall_limit_s(self: ScorerSettings) -> float:
        """The wall-clock limit of one method run: with a CPU-time limit, only a backstop for hung runs."""
        backstop = self.run_wall_s if self.run_wall_s is not None else self.timeout_s
        if backstop is not None:
            return backstop
        return 5 * self.run_cpu_s     # neither is set, so cpu_limit_s is run_cpu_s
