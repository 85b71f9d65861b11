"""The agent's tools: each handler registered beside its JSON schema, shared by every backend, and the
Toolbox that checks a call's input against that schema and then runs it.

Shell commands and git run in the sandbox with the agent's slice; file tools, the forum, the
notebook and the scorer run here in the runner, outside it. A tool's failure is a result the agent
reads (is_error), never an exception that ends the agent, except a deleted worktree: input that breaks
the schema is one error naming each field, an error of the lab says what was wrong, and anything else
a tool's own code raises is reported as that tool's failure with the exception's type.
"""
from __future__ import annotations

import json
import logging
import shutil
import sys
import threading
import traceback
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from lab import score_text
from lab.disk_full import says_full, translated
from lab.errors import Blocked, LabError, NotFound
from lab.agents import schema
from lab.agents.turns import ToolCall, ToolResult
from lab.sandbox import Bind, Limits, Sandbox
from lab.sandbox.workspace import Workspace, WorktreeMissing
from lab.scaffold import repo as research
from lab.scorer.client import ScorerClient, ScorerUnavailable
from lab.scorer.told import describe_request
from lab.store import agents, events, forum
from lab.task.hf.models import model_folders

if TYPE_CHECKING:
    import sqlite_utils

    from lab.settings import Settings

DATA_INSIDE = "/data"
WRITING_TOOLS = frozenset({"write_file", "edit_file", "git_commit", "run"})   # refused while a measured disk is over quota
# A shell command over a measured quota: no file it writes may grow (RLIMIT_FSIZE 0), so it can delete and read, not
# write; its output reaches the lab's capture through a pipe and cat, which the limit does not bind.
NO_GROWTH = 'prlimit --fsize=0 -- bash -c "$1" 2>&1 | cat; exit "${PIPESTATUS[0]}"'
MAX_WAIT_S = 3600        # the longest one `submission` call waits for a result


def truncate(text: str, limit: int) -> str:
    """Head and tail of text within limit characters, with a note saying how much was cut."""
    if len(text) <= limit:
        return text
    head, tail = text[: limit * 2 // 3], text[-(limit // 3):]
    return f"{head}\n[... {len(text) - len(head) - len(tail)} characters cut; redirect output to a file to keep it ...]\n{tail}"


class ToolError(LabError):
    """A tool call that cannot be carried out; the agent reads this as an error result, with `details`
    added to the result's data."""

    def __init__(self, message: str, /, **details):
        super().__init__(message)
        self.details = details


# ---- the registry ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    input_schema: dict
    run: Callable[..., tuple[str, dict]]      # the Toolbox method that carries it out

    def spec(self) -> dict:
        """What a model is shown (the Messages API's tool definition)."""
        return {"name": self.name, "description": self.description, "input_schema": self.input_schema}


REGISTRY: dict[str, Tool] = {}


def tool(name: str, description: str, properties: dict | None = None, required: tuple[str, ...] = ()):
    """Register a Toolbox method as the tool `name`, taking an object of `properties`."""
    input_schema = {"type": "object", "properties": properties or {}, "required": list(required),
                    "additionalProperties": False}
    schema.check_schema(input_schema, name)

    def register(method):
        REGISTRY[name] = Tool(name, description, input_schema, method)
        return method
    return register


_STR = {"type": "string"}
_INT = {"type": "integer"}
_COUNT = {"type": "integer", "minimum": 1, "maximum": 1000}


@dataclass
class ToolContext:
    agent: str
    cfg: Settings
    db: sqlite_utils.Database
    sandbox: Sandbox
    workspace: Workspace
    data_view: Path
    scorer: ScorerClient
    cpus: tuple[int, ...] | None = None
    gpu: str | None = None
    gpu_memory_fraction: float | None = None
    threads: int = 1


class Toolbox:
    def __init__(self, ctx: ToolContext):
        self.ctx = ctx
        self.cancel = threading.Event()   # set when a stop's grace period is over: the running command is killed
        self.waiting_on_scorer = False    # a stop interrupts a wait for the scorer at once (see runner.py)

    # ---- dispatch ------------------------------------------------------------------------------
    def execute(self, call: ToolCall) -> ToolResult:
        self.ctx.workspace.check()        # a deleted worktree ends the agent with a clear state
        spec = REGISTRY.get(call.name)
        if spec is None:
            return ToolResult(call.id, call.name, f"error: unknown tool {call.name!r} (expected one of: "
                              f"{', '.join(REGISTRY)})", is_error=True, data={"kind": "UnknownTool"})
        problems = schema.violations(spec.input_schema, call.arguments)
        if problems:
            message = f"bad arguments for {call.name}: {'; '.join(problems)}"
            return ToolResult(call.id, call.name, f"error: {message}", is_error=True,
                              data={"error": message, "kind": "BadArguments", "problems": problems})
        try:
            with translated():            # a full state disk is no bug: the agent can ask again once there is space
                if call.name in WRITING_TOOLS and self.ctx.workspace.disk is not None:
                    self.ctx.workspace.disk.check()
                output, data = spec.run(self, **call.arguments)
            return ToolResult(call.id, call.name, truncate(output, self.ctx.cfg.agents.output_chars), data=data)
        except WorktreeMissing:
            raise
        except Blocked as exc:
            events.record(self.ctx.db, self.ctx.agent, "blocked", f"{call.name}: {exc}",
                          {"tool": call.name, "arguments": _brief(call.arguments)})
            return ToolResult(call.id, call.name, f"error: refused: {exc}", is_error=True,
                              data={"error": str(exc), "kind": "Blocked"})
        except LabError as exc:
            return ToolResult(call.id, call.name, f"error: {exc}", is_error=True,
                              data={"error": str(exc), "kind": type(exc).__name__, **getattr(exc, "details", {})})
        except Exception as exc:    # a bug in the tool, whatever it is: the agent reads it and goes on
            # the log keeps the traceback (logging: a full disk is no crash)
            logging.getLogger("lab.tools").error(f"tool {call.name} failed:\n{traceback.format_exc()}")
            message = f"tool {call.name} failed: {type(exc).__name__}: {exc}"
            return ToolResult(call.id, call.name, f"error: {message}", is_error=True,
                              data={"error": message, "kind": type(exc).__name__})

    # ---- the sandbox ---------------------------------------------------------------------------
    def _limits(self, timeout_s: float | None = None) -> Limits:
        a = self.ctx.cfg.agents
        timeout = min(float(timeout_s), a.shell_timeout_s) if timeout_s else a.shell_timeout_s
        return Limits(timeout_s=timeout, memory_mb=a.shell_memory_mb, max_processes=a.shell_processes,
                      max_file_mb=a.shell_file_mb, threads=self.ctx.threads, cpus=self.ctx.cpus, tmp_mb=a.tmp_mb)

    def _env(self) -> dict[str, str]:
        data = self.ctx.sandbox.inside(Bind(self.ctx.data_view, DATA_INSIDE))
        env = {"PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin", "LAB_AGENT": self.ctx.agent,
               "LAB_DATA": data, "GIT_AUTHOR_NAME": self.ctx.agent, "GIT_COMMITTER_NAME": self.ctx.agent,
               "GIT_AUTHOR_EMAIL": f"{self.ctx.agent}@lab", "GIT_COMMITTER_EMAIL": f"{self.ctx.agent}@lab"}
        if self.ctx.gpu is not None:
            env["CUDA_VISIBLE_DEVICES"] = self.ctx.gpu
            if self.ctx.gpu_memory_fraction:
                env["LAB_GPU_MEMORY_FRACTION"] = str(self.ctx.gpu_memory_fraction)
        return env

    def run_sandboxed(self, argv: list[str], timeout_s: float | None = None):
        ws = self.ctx.workspace
        binds = [*ws.binds(), Bind(self.ctx.data_view, DATA_INSIDE),
                 *[Bind(p, str(p)) for p in model_folders(self.ctx.cfg)]]
        return self.ctx.sandbox.run(argv, binds, cwd=binds[0], limits=self._limits(timeout_s),
                                    env={**self._env(), **ws.git_env()}, cancel=self.cancel)

    @tool("shell", (
        "Run a bash command in your sandbox: your worktree (the current folder, writable), the dev data at "
        "$LAB_DATA (/data, read-only), no network. Output is truncated past a limit. Use it to run experiments, "
        "e.g. `python method.py --data $LAB_DATA --out runs/pred.jsonl --seed 0`. The worktree is your own git "
        "repository; every agent's branch is on the read-only remote `lab` (`git fetch -q lab`, then "
        "`git log lab/agent-3`), and any commit id of any agent can be shown or cherry-picked directly."),
        {"command": _STR, "timeout_s": {"type": "number", "minimum": 1, "description": "default: the lab's"}},
        ("command",))
    def _tool_shell(self, command: str, timeout_s: float | None = None):
        disk = self.ctx.workspace.disk
        if disk is not None:
            disk.check_mounted()
        over = disk.over() if disk is not None else None   # a measured quota: the command may delete, not write
        argv = ["bash", "-c", NO_GROWTH, "bash", command] if over else ["bash", "-c", command]
        result = self.run_sandboxed(argv, timeout_s)
        output = result.stdout + (("\n[stderr]\n" + result.stderr) if result.stderr.strip() else "")
        if over is not None:
            output = f"[{over}; this command ran with no file allowed to grow: delete files to go on]\n{output}"
        if result.ok:
            status = "exit 0"
        else:
            status = result.failure() + self._disk_full_note(result.stdout + result.stderr)
        text = f"[{status}, {result.duration_s:.1f} s]\n{output.strip()}"
        if not result.ok:
            raise ToolError(text)
        return text, {"returncode": result.returncode, "duration_s": result.duration_s, "stdout": result.stdout}

    def _disk_full_note(self, output: str) -> str:
        """What filled up, where a command ran out of space: the agent's disk quota, or its /tmp."""
        if not says_full(output):
            return ""
        disk = self.ctx.workspace.disk
        if disk is not None and disk.mode != "off" and disk.nearly_full():
            return f" ({disk.full_message(disk.used_bytes()[0])})"
        return f" (disk full: /tmp holds {self.ctx.cfg.agents.tmp_mb} MB (agents.tmp_mb); files count against the limit)"

    # ---- files ---------------------------------------------------------------------------------
    @tool("read_file", "Read a text file of your worktree, with line numbers.",
          {"path": _STR, "offset": {"type": "integer", "minimum": 1, "description": "first line, from 1"},
           "limit": {**_COUNT, "maximum": 100000, "description": "number of lines"}}, ("path",))
    def _tool_read_file(self, path: str, offset: int = 1, limit: int = 400):
        lines = self.ctx.workspace.read_text(path).splitlines()
        start = int(offset)
        chosen = lines[start - 1: start - 1 + int(limit)]
        text = "\n".join(f"{start + i:5d}  {line}" for i, line in enumerate(chosen))
        more = len(lines) - (start - 1 + len(chosen))
        return text + (f"\n[{more} more lines]" if more > 0 else ""), {"lines": len(lines)}

    @tool("write_file", "Create or overwrite a file of your worktree.", {"path": _STR, "content": _STR},
          ("path", "content"))
    def _tool_write_file(self, path: str, content: str):
        written = self.ctx.workspace.write(path, content)
        return f"wrote {len(content)} characters to {written}", {}

    @tool("edit_file", "Replace one exact, unique occurrence of `old` with `new` in a file.",
          {"path": _STR, "old": _STR, "new": _STR}, ("path", "old", "new"))
    def _tool_edit_file(self, path: str, old: str, new: str):
        text = self.ctx.workspace.read_text(path)
        found = text.count(old)
        if found != 1:
            raise ToolError(f"{path}: `old` occurs {found} times (expected exactly once; give more context)")
        self.ctx.workspace.write(path, text.replace(old, new))
        return f"edited {path}", {}

    @tool("git_commit", "Commit every change in your worktree to your branch; returns the commit id.",
          {"message": _STR}, ("message",))
    def _tool_git_commit(self, message: str):
        if not message.strip():
            raise ToolError("a commit needs a message")
        sha = self.ctx.workspace.commit(message, env=self._env())
        return f"committed {sha} on {self.ctx.workspace.branch}", {"commit": sha}

    # ---- forum ---------------------------------------------------------------------------------
    @tool("forum_post", (
        "Share with the other agents. kind: result, hypothesis, insight, error, observation or question. Give "
        "the commit id of the code and metrics (pgr, pgr_se, acc, seeds) for results, good or bad."),
        {"kind": {"type": "string", "enum": list(forum.KINDS[:-1])}, "title": _STR, "body": _STR, "commit": _STR,
         "metrics": {"type": "object"}}, ("kind", "title", "body"))
    def _tool_forum_post(self, kind: str, title: str, body: str, commit: str | None = None,
                         metrics: dict | None = None):
        if commit:
            commit = self.ctx.workspace.resolve_commit(commit)
            research.keep_posted(self.ctx.workspace.research, commit)
        pid = forum.post(self.ctx.db, self.ctx.agent, kind, title, body, commit, metrics)
        return f"posted #{pid}", {"post_id": pid}

    @tool("forum_comment", "Comment on a forum post.", {"post_id": _INT, "body": _STR}, ("post_id", "body"))
    def _tool_forum_comment(self, post_id: int, body: str):
        cid = forum.comment(self.ctx.db, int(post_id), self.ctx.agent, body)
        return f"commented on #{post_id}", {"comment_id": cid}

    @tool("forum_vote", "Vote on a forum post: +1 (useful, held up) or -1 (wrong, did not replicate).",
          {"post_id": _INT, "value": {"type": "integer", "enum": [1, -1]}}, ("post_id", "value"))
    def _tool_forum_vote(self, post_id: int, value: int):
        forum.vote(self.ctx.db, int(post_id), self.ctx.agent, int(value))
        return f"voted {int(value):+d} on #{post_id}", {}

    @tool("forum_search", "Full-text search of the forum's posts.", {"query": _STR, "limit": _COUNT}, ("query",))
    def _tool_forum_search(self, query: str, limit: int = 10):
        posts = forum.search(self.ctx.db, query, int(limit))
        return _format_posts(posts) or "no posts match", {"posts": posts}

    @tool("forum_read", "Read one post with its comments and votes, or, without post_id, the newest posts.",
          {"post_id": _INT, "limit": _COUNT, "kind": _STR, "order": {"type": "string", "enum": ["new", "top"]}})
    def _tool_forum_read(self, post_id: int | None = None, limit: int = 10, kind: str | None = None,
                         order: str = "new"):
        if post_id is None:
            posts = forum.recent(self.ctx.db, int(limit), kind=kind, order=order)
            return _format_posts(posts) or "the forum is empty", {"posts": posts}
        thread = forum.read(self.ctx.db, int(post_id))
        text = _format_posts([thread], full=True) + "".join(
            f"\n  - {c['author']}: {c['body']}" for c in thread["comment_list"])
        return text, {"post": thread}

    # ---- scorer --------------------------------------------------------------------------------
    @contextmanager
    def _scorer_call(self):
        self.waiting_on_scorer = True
        try:
            yield
        finally:
            self.waiting_on_scorer = False

    @contextmanager
    def _budgeted_call(self):
        """A call that spends the scorer's budget: counted as a query unless the scorer was not reached."""
        reached = True
        try:
            with self._scorer_call():
                yield
        except ScorerUnavailable:
            reached = False
            raise
        finally:
            if reached:
                agents.add_counts(self.ctx.db, self.ctx.agent, scorer_queries=1)

    @tool("evaluate", (
        "Score a predictions file of your worktree (JSONL: {\"id\", \"label\"} per test id) on the public dev test "
        "split: accuracy and PGR, with a little noise and rounding (every call draws it anew). part \"a\" or \"b\" "
        "scores one fixed half of the test texts: select on one half, confirm on the other. Budgeted per hour; one "
        "seed is noisy. Submissions are ranked on fresh texts of the same task, which no agent sees."),
        {"predictions": _STR, "part": {"type": "string", "enum": ["all", "a", "b"], "description": "default all"}},
        ("predictions",))
    def _tool_evaluate(self, predictions: str, part: str = "all"):
        limit = int(self.ctx.cfg.scorer.max_output_mb * 1024 * 1024)
        try:
            content = self.ctx.workspace.read_bytes(predictions, max_bytes=limit)
        except NotFound:
            raise ToolError(f"{predictions}: no such file in your worktree (write predictions under it, e.g. runs/)")
        with self._budgeted_call():    # the scorer gets the file's bytes, never a path
            result = self.ctx.scorer.evaluate(self.ctx.agent, content, part)
        agents.add_counts(self.ctx.db, self.ctx.agent, experiments=1)
        where = "" if part == "all" else f" on half {part} ({result['texts']} texts)"
        return (f"public dev accuracy {result['acc']:.3f}{where}, PGR {result['pgr']:+.3f} (weak "
                f"{result['weak_acc']:.3f}, ceiling {result['ceiling_acc']:.3f}; with noise of SD "
                f"{result['noise_texts']:g} texts of {result['texts']}; one predictions file, so one seed)"), result

    @tool("submit", (
        "Queue a commit for scoring; returns at once with its request id. The scorer re-runs the method over "
        "every seed, on the public dev set and on fresh texts of the same task that no agent sees (they rank it), "
        "and tells you the public dev PGR with its standard error and the flags, which takes minutes (hours for "
        "large models). Keep working meanwhile: the result reaches you as a note from the scorer when it is done, "
        "or call `submission` with the request id. wait_s waits up to that many seconds for the result here "
        "instead. Budgeted, queued ones included; submit what beats your best by more than noise on texts you did "
        "not choose it on."),
        {"commit": _STR, "path": {"type": "string", "description": "default method.py"},
         "wait_s": {"type": "number", "minimum": 0, "maximum": MAX_WAIT_S, "description": "default 0"}},
        ("commit",))
    def _tool_submit(self, commit: str, path: str = "method.py", wait_s: float = 0):
        sha = self.ctx.workspace.resolve_commit(commit)
        with self._budgeted_call():
            view = self.ctx.scorer.enqueue(self.ctx.agent, sha, path)
        if wait_s:
            try:
                with self._scorer_call():
                    view = self.ctx.scorer.request(self.ctx.agent, view["request"], float(wait_s), cancel=self.cancel)
            except ScorerUnavailable as exc:     # queued all the same: say under which id
                raise ToolError(f"{describe_request(view)}, but waiting for its result failed: {exc}",
                                **{**view, "kind": "ScorerUnavailable"}) from None
        return self._told(view)

    @tool("submission", (
        "A submission you queued with `submit`: queued, being scored, failed (and why), or done with its public dev PGR "
        "and flags. wait_s waits up to that many seconds for it to finish. Without request, "
        "your recent submissions."),
        {"request": {**_INT, "description": "the request id that `submit` gave"},
         "wait_s": {"type": "number", "minimum": 0, "maximum": MAX_WAIT_S, "description": "default 0"}})
    def _tool_submission(self, request: int | None = None, wait_s: float = 0):
        with self._scorer_call():
            if request is None:
                views = self.ctx.scorer.requests(self.ctx.agent)
                return "\n".join(describe_request(v) for v in views) or "no submissions yet", {"requests": views}
            view = self.ctx.scorer.request(self.ctx.agent, int(request), float(wait_s), cancel=self.cancel)
        return self._told(view)

    def _told(self, view: dict) -> tuple[str, dict]:
        """A request as the agent reads it: its result when done, a tool error when it failed, else where it is."""
        data = {**view, **(view.get("result") or {})}
        if view["state"] == "failed":
            raise ToolError(describe_request(view), **{**data, "kind": view.get("kind") or "SubmissionFailed"})
        if view["state"] == "done":
            return describe_request(view), data
        return (f"{describe_request(view)}. Keep working: its result comes to you as a note from the scorer, or "
                f"call `submission` with request {view['request']} (wait_s to wait for it)."), data

    @tool("run", (
        "Run your method once through the lab's scheduler (the queue the scorer's own runs use; on a cluster, "
        "any node with a free CPU or GPU share) instead of in your shell: a commit of yours (default HEAD: your "
        "branch as committed), a seed, and extra command-line arguments after the method contract's own, on the "
        "dev data under the scorer's limits. Waits for it, then puts the predictions and the ends of stdout and "
        "stderr into runs/run-<id>/, ready for `evaluate`. Use it for heavy experiments (GPU fine-tunes, long "
        "training), which then never contend with the scorer's runs outside its queue; quick checks can stay in "
        "`shell`."),
        {"commit": {"type": "string", "description": "default HEAD"},
         "path": {"type": "string", "description": "the method file, default method.py"},
         "seed": {"type": "integer", "minimum": 0, "description": "default 0"},
         "args": {"type": "array", "items": {"type": "string"},
                  "description": "after --data, --out and --seed; at most 64"}})
    def _tool_run(self, commit: str = "HEAD", path: str = "method.py", seed: int = 0, args: list[str] | None = None):
        sha = self.ctx.workspace.resolve_commit(commit)
        with self._scorer_call():
            view = self.ctx.scorer.start_run(self.ctx.agent, sha, path, int(seed), list(args or []))
            view = self.ctx.scorer.run_status(self.ctx.agent, view["run"], float("inf"), cancel=self.cancel)
        where = f"runs/run-{view['run']}"
        copied = []
        outputs = self.ctx.cfg.state.run.run_outputs(view["run"])
        for name in view.get("outputs") or []:
            data = (outputs / name).read_bytes()     # the lab wrote these from what the method printed
            copied.append(self.ctx.workspace.write(f"{where}/{name}", data))
        shutil.rmtree(outputs, ignore_errors=True)   # the worktree holds them now
        node = f"on node {str(view['node'])[:12]}" + (f" (attempt {view['attempts']})" if (view["attempts"] or 1) > 1
                                                     else "") if view.get("node") else ""
        data = {**view, "files": copied}
        if view["state"] != "done":
            reason = view.get("reason") or f"it is still {view['state']}"
            raise ToolError(f"run {view['run']} of {sha[:10]} {path} seed {seed} failed {node}: {reason}"
                            + (f" (its logs: {', '.join(copied)})" if copied else ""), **data)
        predictions = f"{where}/predictions.jsonl"
        return (f"run {view['run']} of {sha[:10]} {path} seed {seed} finished {node} in {view['duration_s']:.1f} s; "
                f"predictions at {predictions} (`evaluate` it), logs in {where}/"), {**data, "predictions": predictions}

    @tool("leaderboard", "Every scored submission's public dev PGR (as agents are told it), best first.",
          {"limit": _COUNT})
    def _tool_leaderboard(self, limit: int = 20):
        with self._scorer_call():
            board = self.ctx.scorer.leaderboard()[: int(limit)]
        lines = [f"#{r['submission']} {r['agent']} {(r['commit'] or '')[:10]} {r['method']}: public dev PGR "
                 f"{score_text.pgr(r['pgr'], r['pgr_se'])}" + (f"; flags: {score_text.flags(r['flags'])}"
                                                              if r["flags"] else "")
                 for r in board]
        return "\n".join(lines) or "no scored submissions yet", {"leaderboard": board}

    # ---- notebook ------------------------------------------------------------------------------
    @tool("notebook", (
        "Your persistent notes, kept across restarts and fresh conversations: read them, append to them, "
        "or replace them."),
        {"action": {"type": "string", "enum": ["read", "append", "replace"]}, "text": _STR}, ("action",))
    def _tool_notebook(self, action: str, text: str = ""):
        db, agent = self.ctx.db, self.ctx.agent
        if action == "read":
            current = agents.notebook(db, agent)
            return current or "(your notebook is empty)", {"notebook": current}
        if action == "append":
            current = agents.notebook(db, agent)
            agents.set_notebook(db, agent, (current + "\n" if current else "") + text)
        else:
            agents.set_notebook(db, agent, text)
        return f"notebook {action}ed ({len(agents.notebook(db, agent))} characters)", {}


TOOLS: list[dict[str, Any]] = [t.spec() for t in REGISTRY.values()]
TOOL_NAMES = list(REGISTRY)


def _brief(arguments: dict) -> dict:
    return {k: (v[:200] if isinstance(v, str) else v) for k, v in arguments.items()}


def _format_posts(posts: list[dict], full: bool = False) -> str:
    out = []
    for p in posts:
        head = f"#{p['id']} [{p['kind']}] {p['title']} (by {p['author']}, score {p['score']:+d}, {p['comments']} comments"
        head += f", commit {p['commit_sha'][:10]})" if p.get("commit_sha") else ")"
        metrics = f"\n    metrics: {json.dumps(p['metrics'])}" if p.get("metrics") else ""
        body = p["body"] if full else p["body"][:300]
        out.append(f"{head}{metrics}\n    {body}")
    return "\n".join(out)
