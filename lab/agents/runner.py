"""One agent's process: `python -m lab.agents.runner --config FILE --agent agent-3 ...`, which the supervisor has its
zygote fork with these imports done and the supervisor's config in hand (lab.agents.zygote). Started by hand, it
validates lab.toml itself. It writes its pid file first (lab.agents.pidfiles): the lab finds it by that.

Exit codes: 0 ended cleanly (stopped, budget, stuck: the state says which); 3 cannot go on until a
person acts (a deleted worktree); 75 the state disk was full; anything else is a crash, which the
supervisor restarts.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import traceback
from typing import NoReturn

from lab import config as configs
from lab.agents import pidfiles
from lab.agents.backends import make_backend
from lab.agents.loop import AgentLoop
from lab.agents.publish_quota import PublishQuota
from lab.agents.tools import TOOLS, ToolContext, ToolError, Toolbox
from lab.agents.turns import AgentWorld
from lab.config.schema import Config
from lab.disk_full import MAY_BE_FULL, is_full
from lab.errors import INTERRUPTED, LabError
from lab.logfiles import log_to
from lab.sandbox import make_sandbox
from lab.sandbox.disk_quota import disk_of
from lab.sandbox.slices import Slice
from lab.sandbox.workspace import Workspace
from lab.scaffold.publish_check import PublishLimits
from lab.scaffold.repo import research_repo_path
from lab.scorer.auth import AgentCredentials
from lab.scorer.client import ScorerClient
from lab.store import agents, open_db
from lab.task.testbed import Testbed

EXIT_NEEDS_PERSON = 3
EXIT_DISK_FULL = 75     # EX_TEMPFAIL: the state disk was full; the supervisor starts it again, as often as it takes


def main(argv: list[str] | None = None, cfg: Config | None = None) -> int:
    """`cfg`: the config the zygote holds; without it, lab.toml (--config) is validated here."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", required=True)
    parser.add_argument("--agent", required=True)
    parser.add_argument("--backend", required=True)
    parser.add_argument("--scorer", required=True, help="the scorer service's URL")
    parser.add_argument("--slice", required=True, help="JSON: {cpus, gpu}")
    args = parser.parse_args(argv)

    scorer_token = AgentCredentials.from_environment(args.agent)   # out of the environment before anything starts
    cfg = cfg if cfg is not None else configs.load(args.config)
    name, slice_ = args.agent, Slice.from_dict(json.loads(args.slice))
    pidfiles.write_own(cfg.state.run.runner_pid(name))
    log_to(cfg.state.run.agent_log(name))   # timestamped and rotating; stdout and stderr follow it
    log = logging.getLogger("lab.runner")
    os.sched_setaffinity(0, slice_.cpus)
    db = open_db(cfg.state.db)
    sandbox = make_sandbox(cfg.lab.sandbox, warn=log.warning, user=name)
    disk = disk_of(cfg, name) if cfg.agents.disk_quota != "off" else None
    workspace = Workspace(cfg.sandboxes_dir / name, research_repo_path(cfg.state_dir), name, sandbox,
                          PublishLimits.of(cfg.agents), disk=disk,
                          publish_quota=PublishQuota(db, name, cfg.agents.publish_mb_per_hour))
    workspace.check()
    ctx = ToolContext(agent=name, cfg=cfg, db=db, sandbox=sandbox, workspace=workspace,
                      data_view=Testbed(cfg.state_dir, cfg.task).view(cfg.task.dev), scorer=ScorerClient(args.scorer, scorer_token),
                      cpus=slice_.cpus, gpu=slice_.gpu, threads=slice_.threads,
                      gpu_memory_fraction=slice_.gpu_memory_fraction)
    row = agents.get(db, name)
    try:  # the agent's own file: read without following a link it may have planted there
        readme = workspace.read_text("README.md", max_bytes=64 * 1024)
    except LabError:
        readme = ""
    world = AgentWorld(name=name, direction=row["direction"] or "", tools=TOOLS, worktree=str(workspace.path),
                       readme=readme,
                       notebook=lambda: agents.notebook(db, name))
    backend = make_backend(args.backend, cfg, world, agents.backend_state(db, name))
    toolbox = Toolbox(ctx)
    loop = AgentLoop(name, cfg, db, backend, toolbox)

    def stop(reason: str):
        def handler(*_):
            if os.getppid() != loop.parent:    # its zygote died (with the supervisor): a new runner waits for this one
                loop.request_stop("the supervisor is gone; `lab start` resumes the agent", grace_s=0)
            else:
                loop.request_stop(reason)
            if toolbox.waiting_on_scorer:  # a submission can wait minutes in the scorer's queue: give up the wait
                raise ToolError("stopped while waiting for the scorer (a queued submission is kept; its result comes "
                                "as a note from the scorer)", kind=INTERRUPTED)
        return handler

    signal.signal(signal.SIGTERM, stop("stopped by the supervisor"))
    signal.signal(signal.SIGINT, stop("interrupted"))
    state, reason = loop.run()
    log.info(f"{name}: {state}: {reason}")
    return EXIT_NEEDS_PERSON if state == "failed" else 0


def run(argv: list[str] | None = None, cfg: Config | None = None) -> NoReturn:
    """main(), then leave at once, skipping the interpreter's shutdown (0.5-2 s under load): the state is saved and
    SQLite committed. A runner forked by the zygote (lab.agents.zygote) comes here too, with its config."""
    try:
        code = main(argv, cfg)
    except MAY_BE_FULL as exc:
        if not is_full(exc):
            raise
        logging.getLogger("lab.runner").error(f"the state disk is full:\n{traceback.format_exc()}")
        code = EXIT_DISK_FULL
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    run()
