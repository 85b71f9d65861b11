"""Exceptions raised by the core; the CLI turns each into one clear line and exit code 2."""


class LabError(Exception):
    """Base of every error the lab reports to a person as one line."""


class ConfigError(LabError):
    """lab.toml is missing, malformed, or names something unknown."""


class TestbedError(LabError):
    """The testbed is not prepared, or its cache is missing or corrupt."""


class SandboxError(LabError):
    """The sandbox cannot be set up on this machine."""


class MethodRejected(LabError):
    """A method's run or output broke the method contract; nothing is recorded as a score."""


class BudgetExceeded(LabError):
    """An agent asked the scorer for more than its query budget allows."""


class NotFound(LabError):
    """A submission, commit or agent that does not exist was named."""


class Blocked(LabError):
    """An agent's request reached for something outside what it may touch (a link out of its worktree, a device
    file, another agent's branch); refused, recorded, and reported to the agent as a tool error."""


class GitError(LabError):
    """A git command on the research repository failed."""


class StateDiskFull(LabError):
    """The disk that holds the lab's state is full: what was asked for was not written; it can be asked again
    once space returns."""


class Unauthorized(LabError):
    """A call to the scorer service without a valid token: it cannot tell who is calling."""


class Forbidden(LabError):
    """A call to the scorer service, with a valid token, on behalf of someone the token does not name."""


class ScorerInterrupted(LabError):
    """The scorer stopped (it was killed, or the lab was stopped) while it worked on a request; ask again."""


# The kinds of tool error that say the lab failed, not the agent: its state disk, its scorer, its sandbox, its own
# git on the research repository, a run killed from outside, or a call cut short by a stop. The same call can succeed
# later; an agent is never stopped for them (neither as stuck nor for failing in a row): it waits a little and asks
# again.
INTERRUPTED = "Interrupted"     # a tool call cut short (or not run) because the agent was being stopped
LAB_FAULTS = frozenset({"StateDiskFull", "DiskQuotaError", "ScorerUnavailable", "ScorerInterrupted", "ScorerFailed",
                        "SandboxError", "GitError", "RunKilled", INTERRUPTED})


def is_lab_fault(kind: object) -> bool:
    return kind in LAB_FAULTS
