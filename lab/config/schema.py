"""lab.toml's schema: its sections, their settings' types, defaults and descriptions, and the checks across them."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from lab.config.backends import BackendName
from lab.config.derived import AgentNames, LabPaths, RunLimits, TaskDatasets
from lab.config.embedded import EMBEDDED_DATASETS


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LabSection(Strict):
    state_dir: str = Field(".lab", description="The lab's state: database, testbed, research repository (git-ignored).")
    sandbox: Literal["bwrap", "none"] = Field("bwrap",
        description='"bwrap" (bubblewrap) or "none" (untrustworthy: methods can read labels).')


class SplitSizes(Strict):
    """A dataset's splits. Each dataset also has a pool of 2.5 x `teacher` other labelled texts, which the second
    teachers are trained on (lab.task.second_teacher); the dev dataset also has a private replica of `train` and `test`
    more texts (lab.config.derived.TaskDatasets)."""
    teacher: int = Field(500, ge=20, description='Labelled texts the weak teacher learns from.')
    train: int = Field(2200, ge=20, description="Texts the strong model trains on, with the teacher's soft labels.")
    test: int = Field(1100, ge=20, description='Texts scored.')


def _default_sizes() -> dict[str, SplitSizes]:
    return {name: SplitSizes(**spec.default_sizes) for name, spec in EMBEDDED_DATASETS.items()}


LABEL_WORDS = {"binary": [" No", " Yes"], "pairwise": [" A", " B"]}
DEFAULT_TEMPLATES = {
    "binary": "Question: {question}\nAnswer: {choice}\nIs the answer correct? Answer Yes or No.\n",
    "pairwise": "Prompt: {prompt}\n\nResponse A: {first}\n\nResponse B: {second}\n\n"
                "Which response is better? Answer A or B.\n",
}


class HfTraining(Strict):
    """How a model is fine-tuned as a classifier over the label words: LoRA on a causal LM."""
    epochs: int = Field(2, ge=1, description='Training epochs.')
    lr: float = Field(2e-4, gt=0, description='Learning rate.')
    batch_size: int = Field(8, ge=1, description='Examples per step.')
    grad_accum: int = Field(1, ge=1, description='Steps of gradient accumulation.')
    max_length: int = Field(512, ge=8, description='Tokens per example; longer prompts are truncated.')
    lora_r: int = Field(16, ge=1, description='LoRA rank.')
    lora_alpha: int = Field(32, ge=1, description='LoRA alpha.')
    lora_dropout: float = Field(0.05, ge=0, lt=1, description='LoRA dropout.')


class HfDataset(Strict):
    """One dataset of JSONL files; relative paths are relative to lab.toml."""
    shape: Literal["binary", "pairwise"] = Field(
        description='"binary" ({question, choice, label}) or "pairwise" ({prompt, first, second, label}).')
    labelled: str = Field(description="JSONL file: the weak teacher's labelled split.")
    train: str = Field(
        description="JSONL file: the strong model's training split (its labels are private, for the ceiling).")
    test: str = Field(description='JSONL file: the scored split (labels private).')
    template: str | None = Field(None, description="The prompt template; unset: the shape's default.")
    label_words: list[str] | None = Field(None, min_length=2, max_length=2,
        description="The two label words (negative first); unset: the shape's default.")

    @property
    def prompt_template(self) -> str:
        return self.template or DEFAULT_TEMPLATES[self.shape]

    @property
    def words(self) -> list[str]:
        return self.label_words or LABEL_WORDS[self.shape]


class HfSection(Strict):
    """The `hf` task kind: any Hugging Face strong and weak causal LMs, the person's own datasets."""
    strong: str = Field(description='The strong model: a Hub id in the local Hugging Face cache, or a folder.')
    weak: str = Field(description="The weak teacher's model: a Hub id in the local cache, or a folder.")
    datasets: dict[str, HfDataset] = Field(min_length=1,
        description='The datasets, by name; `task.dev` and `task.heldout` name them.')
    strong_training: HfTraining = Field(HfTraining(),
        description="How the strong model is fine-tuned (the ceiling and the scaffold's methods).")
    weak_training: HfTraining = Field(HfTraining(epochs=3, lr=5e-4), description='How the weak teacher is fine-tuned.')


class TaskSection(Strict, TaskDatasets):
    kind: Literal["embedded", "hf"] = Field("embedded",
        description='"embedded" (offline CPU testbed) or "hf" (Hugging Face models, your datasets).')
    dev: str = Field("rotten_tomatoes", description='The task agents see.')
    heldout: list[str] = Field(["imdb", "tweets"], description='Never shown to agents; scored for people.')
    seeds: int = Field(5, ge=1, le=50, description='Seeds over which the ceiling baseline is averaged.')
    split_seed: int = Field(0, description='Seed of the fixed, class-balanced splits.')
    max_tokens: int = Field(256, ge=8, le=512, description='Strong-model truncation, in tokens (embedded kind).')
    batch_size: int = Field(64, ge=1, description="Batch size of the strong model's feature pass (embedded kind).")
    min_gap: float = Field(0.10, ge=0.0, le=1.0, description='Warn when ceiling - weak on the dev task is below this.')
    sizes: dict[str, SplitSizes] = Field(default_factory=_default_sizes,
        description='Split sizes per dataset (embedded kind).')
    hf: HfSection | None = Field(None, description='The `hf` kind\'s models and datasets (with kind = "hf").')

    @model_validator(mode="after")
    def _known_datasets(self) -> "TaskSection":
        if self.kind == "hf":
            return self._known_hf_datasets()
        if self.hf is not None:
            raise ValueError('task.hf is set but task.kind is "embedded" (set task.kind = "hf" to use it)')
        for where, name in [("dev", self.dev)] + [("heldout", n) for n in self.heldout] + [
            ("sizes", n) for n in self.sizes
        ]:
            if name not in EMBEDDED_DATASETS:
                raise ValueError(
                    f"task.{where} names unknown dataset {name!r} (expected one of: {', '.join(EMBEDDED_DATASETS)})"
                )
        if self.dev in self.heldout:
            raise ValueError(f"task.heldout must not contain the dev dataset {self.dev!r}")
        return self

    def _known_hf_datasets(self) -> "TaskSection":
        if self.hf is None:
            raise ValueError('task.kind = "hf" needs a [task.hf] section (strong, weak, datasets)')
        known = self.hf.datasets
        for where, name in [("dev", self.dev)] + [("heldout", n) for n in self.heldout]:
            if name not in known:
                raise ValueError(f"task.{where} names dataset {name!r}, which [task.hf.datasets] does not define "
                                 f"(expected one of: {', '.join(known)})")
        if self.dev in self.heldout:
            raise ValueError(f"task.heldout must not contain the dev dataset {self.dev!r}")
        return self

    def sizes_of(self, dataset: str) -> SplitSizes:
        return self.sizes.get(dataset) or SplitSizes(**EMBEDDED_DATASETS[dataset].default_sizes)


class ScorerSection(Strict, RunLimits):
    seeds: int = Field(5, ge=1, le=50, description='Seeds each submitted method is run over.')
    timeout_s: float | None = Field(None, gt=0,
        description='Old name: a wall-clock-only limit per run (use run_cpu_s and run_wall_s).')
    run_cpu_s: float = Field(180, gt=0, description='CPU seconds one method run may use, all its processes together.')
    run_wall_s: float | None = Field(None, gt=0,
        description='Wall-clock backstop for a hung run; unset: 5 x run_cpu_s.')
    # a run using (or waiting for) under 1% of a core for this long is hung (lab/sandbox/stall.py): 20 x the longest
    # such stretch of a healthy baseline run beside busy processes, 1.5 s (bench/bench_stall.py, 2 cores, load 16)
    stall_s: float = Field(30, gt=0,
        description='A run using (or waiting for) under 1% of a core this long is ended as hung.')
    gpu_stall_s: float = Field(300, gt=0, description='The same for a run holding a GPU.')
    memory_mb: int = Field(6144, ge=256, description='Memory limit per method run.')
    max_processes: int = Field(256, ge=8, description='Processes per method run.')
    max_output_mb: float = Field(16, gt=0, description='Largest file a method run may write.')
    parallel: int = Field(2, ge=1, description="The scorer's method runs at once (local engine, CPU), shared "
                          "round-robin by agent; one more for an agent with none going.")
    submissions_at_once: int = Field(9, ge=1,
        description='Submissions scored at once, at most one per agent (their runs share the run slots).')
    runs_per_gpu: int = Field(1, ge=1, description='Method runs sharing one GPU at once (each queues for a slot).')
    threads_per_run: int = Field(1, ge=1, description='Threads (and CPUs asked of Ray) per method run.')
    check_seeds: int = Field(2, ge=1,
        description='The teacher check: runs with a second teacher on each set no agent has seen (at most seeds).')
    flag_dependence_z: float = Field(2.0, ge=0,
        description='Flag ignores_teacher when texts moved with and against the teacher differ by less than this many SE.')
    flag_overfit_public: float = Field(0.05, ge=0,
        description="Flag overfit_public when public dev PGR exceeds the private replica's by more than this ...")
    flag_overfit_z: float = Field(2.0, ge=0,
        description='... even this many standard errors (seeds and texts) below the difference.')
    flag_heldout_gap: float = Field(0.3,
        description='Flag heldout_gap when private dev PGR exceeds the held-out mean by more than this.')
    evaluate_noise: float = Field(3.0, ge=0,
        description='SD of the noise on every accuracy an agent is told, in test texts.')
    evaluate_budget: int = Field(400, ge=0, description='Evaluations per agent per window.')
    submit_budget: int = Field(12, ge=0, description='Submissions per agent per window.')
    budget_window_hours: float = Field(1.0, gt=0, description="The budgets' window, in hours.")
    host: str = Field("127.0.0.1", description='Address the scorer service listens on.')
    port: int = Field(0, ge=0, le=65535, description='Its port; 0: any free port (written to .lab/run/scorer.url).')

    @model_validator(mode="before")
    @classmethod
    def _no_counterfactual(cls, data):
        if isinstance(data, dict) and "shuffle_seeds" in data:
            raise ValueError("scorer.shuffle_seeds is gone with the dev counterfactual teachers: the teacher check now "
                             "runs a second real teacher on data no agent has seen (set scorer.check_seeds instead)")
        return data

    @model_validator(mode="after")
    def _check_runs_pair_with_seeds(self) -> "ScorerSection":
        if self.check_seeds > self.seeds:
            raise ValueError(f"scorer.check_seeds ({self.check_seeds}) must not exceed scorer.seeds ({self.seeds}): "
                             "each second-teacher run pairs with the first teacher's run of the same seed")
        if self.timeout_s is not None and self.run_wall_s is not None:
            raise ValueError("scorer.timeout_s is the old name of scorer.run_wall_s: set only run_wall_s "
                             "(and run_cpu_s, the CPU-time limit)")
        return self


DIRECTIONS = [
    "data reweighting: weight or filter the teacher's examples by how trustworthy they look",
    "confidence losses: let the strong model disagree with the teacher where it is confident (logconf, bootstrapping)",
    "unsupervised elicitation: draw labels out of the strong model's own features and combine them with the teacher",
    "ensembles and co-training: several probes, layers or views that correct each other",
    "interpretability of the strong features: which layers and directions carry the label",
    "regularisation and early stopping: keep the strong model from fitting the teacher's mistakes",
    "self-training: relabel the training set with the strong model's confident predictions, round after round",
    "label-noise-robust losses: losses that tolerate the teacher's errors (smoothing, symmetric, truncated losses)",
    "free exploration: anything that raises PGR and holds up on unseen data",
]


class AgentsSection(Strict, AgentNames):
    count: int = Field(9, ge=1, le=64, description='Research agents, each in sandboxes/agent-N on branch agent-N.')
    backend: Literal["auto", BackendName] = Field("auto",
        description='"auto": claude where ANTHROPIC_API_KEY is set and `lab start` was told yes, else "researcher".')
    directions: list[str] = Field(default_factory=lambda: list(DIRECTIONS), min_length=1,
        description='One starting direction per agent (cycled); nine defaults.')
    max_restarts: int = Field(5, ge=0,
        description='Crashes in a row before the supervisor gives an agent up ("failed").')
    restart_backoff_s: float = Field(2.0, ge=0,
        description='Wait before a restart, doubled after each crash (at most 60 s).')
    grace_s: float = Field(3.0, ge=0, description='At a stop, a running tool call gets this long before it is killed.')
    shell_timeout_s: float = Field(300, gt=0, description="One shell command's time limit (an agent may ask for less).")
    shell_memory_mb: int = Field(4096, ge=256, description='Memory of one shell command.')
    shell_processes: int = Field(256, ge=8, description='Processes of one shell command.')
    shell_file_mb: float = Field(256, gt=0, description='Largest file a shell command may write.')
    tmp_mb: int = Field(1024, ge=16, description="Size of the sandbox's private /tmp.")
    output_chars: int = Field(10000, ge=200,
        description='Tool output kept per call; the middle of longer output is cut, with a note.')
    git_message_kb: float = Field(64, gt=0,
        description='Largest commit or tag (message and headers) a publish may bring.')
    git_blob_mb: float = Field(64, gt=0,
        description='Largest file (blob) or folder listing (tree) a publish may bring.')
    git_publish_mb: float = Field(256, gt=0, description='All objects of one publish together, unpacked.')
    git_publish_objects: int = Field(20000, ge=100, description='Objects one publish may bring.')
    repeat_limit: int = Field(5, ge=2,
        description='The same failing call this many times in a row: the agent stops as "stuck".')
    step_pause_s: float = Field(0.0, ge=0, description="Pause between an agent's steps.")
    disk_quota: Literal["auto", "loop", "measured", "off"] = Field("auto",
        description='How disk_mb holds: "loop", "measured", "auto" (loop where possible, else measured) or "off".')
    disk_mb: int = Field(2048, ge=4,
        description="Each agent's disk: its worktree, its repository's objects, its files; reserved whole on the "
                    "state disk in loop mode.")
    publish_mb_per_hour: float = Field(1024, gt=0,
        description="Bundle bytes one agent's publishes may bring into research.git in any hour.")
    prune_every_minutes: float = Field(10, gt=0,
        description="research.git's unreachable objects are pruned this often ...")
    prune_grace_minutes: float = Field(60, ge=0, description='... once older than this (a publish in flight is newer).')
    script: str | None = Field(None, description='backend = "scripted": a JSON file of turns (tests and demos).')

    @model_validator(mode="after")
    def _script_given(self) -> "AgentsSection":
        if self.backend == "scripted" and not self.script:
            raise ValueError("agents.backend = \"scripted\" needs agents.script (a JSON file of turns)")
        return self


class Limit(Strict):
    """0 means no limit."""
    hours: float = Field(0, ge=0, description='Wall-clock hours run; 0: no limit.')
    dollars: float = Field(0, ge=0, description='Model spend (claude backend); 0: no limit.')
    tokens: int = Field(0, ge=0, description='Model tokens; 0: no limit.')
    scorer_queries: int = Field(0, ge=0, description='Evaluations + submissions; 0: no limit.')


class BudgetSection(Strict):
    agent: Limit = Field(Limit(dollars=20.0), description='Per agent.')
    lab: Limit = Field(Limit(dollars=150.0), description='The whole lab together.')


class Prices(Strict):
    """Dollars per million tokens. Each price left out comes from the backend's table of models
    (lab/agents/backends/claude/models.toml); a model the table does not know needs all five."""
    input: float | None = Field(None, ge=0, description='Dollars per million input tokens.')
    output: float | None = Field(None, ge=0,
        description='Dollars per million output tokens (thinking tokens are output tokens).')
    cache_write: float | None = Field(None, ge=0, description='Dollars per million tokens of a 5-minute cache write.')
    cache_write_1h: float | None = Field(None, ge=0, description='Dollars per million tokens of a 1-hour cache write.')
    cache_read: float | None = Field(None, ge=0, description='Dollars per million tokens read from the cache.')


Effort = Literal["low", "medium", "high", "xhigh", "max"]


class ClaudeSection(Strict):
    model: str = Field("claude-sonnet-5-5", description="Every agent's model, unless `models` names another for it.")
    models: dict[str, str] = Field({},
        description='Per agent, e.g. {"agent-3" = "claude-opus-5-5"}; others use `model`.')
    thinking: Literal["adaptive", "off"] = Field("adaptive",
        description='"adaptive": as each model thinks; "off": the least it allows.')
    effort: Effort | None = Field(None,
        description="output_config.effort: low, medium, high, xhigh or max; unset: each model's own.")
    efforts: dict[str, Effort] = Field({}, description='Per agent, e.g. {"agent-3" = "max"}; others use `effort`.')
    thinking_budget: int = Field(0, ge=0,
        description='budget_tokens, for models with extended thinking only: 0 off, else at least 1024.')
    max_tokens: int | None = Field(None, ge=256,
        description="Per reply (thinking included); unset: the model's own default.")
    context_tokens: int = Field(120000, ge=2000,
        description='Past this, the conversation restarts from a summary plus the notebook.')
    timeout_s: float | None = Field(None, gt=0,
        description="To connect, or for a streamed reply's next event; unset: follows max_tokens.")
    max_retries: int = Field(8, ge=0,
        description='Retries on 408, 409, 429, 5xx, timeouts, dropped connections, broken streams.')
    retry_base_s: float = Field(2.0, ge=0,
        description='Backoff: doubled each retry, with jitter, unless the server says how long.')
    retry_max_wait_s: float = Field(60.0, gt=0, description="The longest single wait, a server's retry-after included.")
    base_url: str | None = Field(None, description="Another Messages API endpoint; unset: Anthropic's.")
    cache_ttl: Literal["5m", "1h"] = Field("5m",
        description='Prompt-cache lifetime: "5m" or "1h"; each has its own write price.')
    prices: Prices = Field(Prices(), description="Prices of `model`, over the package's table.")
    model_prices: dict[str, Prices] = Field({}, description='Prices of other models, by name, over the table.')

    @model_validator(mode="after")
    def _consistent(self) -> "ClaudeSection":
        if self.thinking_budget and self.thinking_budget < 1024:
            raise ValueError(f"claude.thinking_budget must be 0 (off) or at least 1024 (the API's minimum), "
                             f"got {self.thinking_budget}")
        if self.max_tokens is not None and self.thinking_budget >= self.max_tokens:
            raise ValueError(f"claude.thinking_budget ({self.thinking_budget}) must be below claude.max_tokens "
                             f"({self.max_tokens}): thinking tokens count toward max_tokens")
        for key, per_agent in (("models", self.models), ("efforts", self.efforts)):
            for agent in per_agent:
                number = agent.removeprefix("agent-")
                if not (agent.startswith("agent-") and number.isdigit() and int(number) >= 1):
                    raise ValueError(f"claude.{key}: {agent!r} is not an agent's name (expected names like agent-3)")
        if self.model in self.model_prices:
            raise ValueError(f"claude.model_prices names {self.model!r}, which is claude.model: its prices are "
                             "[claude.prices]")
        return self

    def check_agents(self, names: list[str]) -> None:
        """Every per-agent model and effort names an agent of this lab (called by Config, which knows the agents)."""
        for key, per_agent in (("models", self.models), ("efforts", self.efforts)):
            unknown = [agent for agent in per_agent if agent not in names]
            if unknown:
                raise ValueError(f"claude.{key} names {', '.join(unknown)}, not an agent of this lab "
                                 f"(agents: {names[0]} to {names[-1]})")

    def model_for(self, agent: str) -> str:
        return self.models.get(agent, self.model)

    def effort_for(self, agent: str) -> Effort | None:
        return self.efforts.get(agent, self.effort)

    def prices_for(self, model: str) -> Prices:
        """The person's prices of that model (each one unset where lab.toml leaves it to the table)."""
        return self.prices if model == self.model else self.model_prices.get(model, Prices())


class SlicesSection(Strict):
    gpus: list[str] = Field([],
        description='E.g. ["0", "1"] or MIG UUIDs; empty: found with nvidia-smi, else CPU slices only.')
    cpus_per_agent: int = Field(0, ge=0, description="0: the machine's cores shared out evenly.")


class ClusterSection(Strict):
    """Where method runs execute: this machine, or a Ray cluster (docs/cluster.md)."""
    engine: Literal["local", "ray"] = Field("local",
        description='"local": this machine (its GPU queue); "ray": a Ray cluster (docs/cluster.md).')
    address: str = Field("auto",
        description='"auto" (the cluster `ray start` made here), "HOST:PORT" or "ray://HOST:PORT".')
    node_cache: str = Field("/var/tmp/lab-cluster", description='On each node: the data files it was sent, by hash.')
    max_retries: int = Field(3, ge=0,
        description='A run whose node or worker dies runs again elsewhere, this many times at most.')
    object_cache_mb: int = Field(2048, ge=16, description="Data files the head keeps in Ray's object store for reuse.")

    @model_validator(mode="after")
    def _address(self) -> "ClusterSection":
        address = self.address.removeprefix("ray://")
        host, _, port = address.rpartition(":")
        if self.address != "auto" and not (host and port.isdigit() and 0 < int(port) < 65536):
            raise ValueError(f'cluster.address must be "auto", "HOST:PORT" or "ray://HOST:PORT", got {self.address!r}')
        if not self.node_cache.startswith("/"):
            raise ValueError(f"cluster.node_cache must be an absolute path (one on every node), got {self.node_cache!r}")
        return self


SOURCE_KEY = "_source_sha256"    # where load() keeps Config.source_sha256 in the instance's __dict__


class Config(Strict, LabPaths):
    lab: LabSection = Field(LabSection(), description='Where the state lives; the sandbox.')
    task: TaskSection = Field(TaskSection(), description='The weak-to-strong task.')
    scorer: ScorerSection = Field(ScorerSection(), description='The scorer: runs, limits, flags, budgets.')
    agents: AgentsSection = Field(AgentsSection(), description='The research agents.')
    budget: BudgetSection = Field(BudgetSection(), description='Budgets per agent and for the lab.')
    claude: ClaudeSection = Field(ClaudeSection(), description='The claude backend.')
    slices: SlicesSection = Field(SlicesSection(), description='How the machine is shared between agents.')
    cluster: ClusterSection = Field(ClusterSection(), description='Where method runs execute.')

    # Set by load(): where the file was, so relative paths resolve against it.
    root: Path = Field(Path("."), description='Set by loading: the folder of lab.toml (not a key).')

    @model_validator(mode="after")
    def _claude_models_name_agents(self) -> "Config":
        self.claude.check_agents(self.agents.names)
        return self

    @property
    def source_sha256(self) -> bytes | None:
        """The SHA-256 of the lab.toml bytes load() validated this from, which keys their cached copy
        (lab.config.cache); None for a config not loaded from a file. No setting: load() keeps it beside the fields,
        in the instance's own __dict__, so that configs of the same settings stay equal (pydantic compares fields
        alone), and a pickled config (lab.config.handover) keeps it."""
        return self.__dict__.get(SOURCE_KEY)

    def scoring_fingerprint(self) -> str:
        """A short hash of everything that decides a score, recorded beside each one."""
        task = self.task.model_dump(exclude={"hf"} if self.task.hf is None else None)
        relevant = {"task": task, "scorer": self.scorer.model_dump(
            include={"seeds", "timeout_s", "run_cpu_s", "run_wall_s", "memory_mb", "check_seeds"})}
        return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:12]
