"""lab.toml: the schema, its defaults, and loading with one-line errors."""
from __future__ import annotations

import hashlib
import json
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from lab.config_derived import AgentNames, LabPaths, RunLimits, TaskDatasets
from lab.errors import ConfigError
from lab.suggest import closest
from lab.toml_lines import key_line
from lab.task.datasets import DATASETS


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LabSection(Strict):
    state_dir: str = ".lab"
    sandbox: Literal["bwrap", "none"] = "bwrap"


class SplitSizes(Strict):
    """A dataset's splits. Each dataset also has a pool of 2.5 x `teacher` other labelled texts, which the second
    teachers are trained on (lab.task.second_teacher); the dev dataset also has a private replica of `train` and `test`
    more texts (lab.config_derived.TaskDatasets)."""
    teacher: int = Field(500, ge=20)
    train: int = Field(2200, ge=20)
    test: int = Field(1100, ge=20)


def _default_sizes() -> dict[str, SplitSizes]:
    return {name: SplitSizes(**spec.default_sizes) for name, spec in DATASETS.items()}


LABEL_WORDS = {"binary": [" No", " Yes"], "pairwise": [" A", " B"]}
DEFAULT_TEMPLATES = {
    "binary": "Question: {question}\nAnswer: {choice}\nIs the answer correct? Answer Yes or No.\n",
    "pairwise": "Prompt: {prompt}\n\nResponse A: {first}\n\nResponse B: {second}\n\n"
                "Which response is better? Answer A or B.\n",
}


class HfTraining(Strict):
    """How a model is fine-tuned as a classifier over the label words: LoRA on a causal LM."""
    epochs: int = Field(2, ge=1)
    lr: float = Field(2e-4, gt=0)
    batch_size: int = Field(8, ge=1)
    grad_accum: int = Field(1, ge=1)
    max_length: int = Field(512, ge=8)
    lora_r: int = Field(16, ge=1)
    lora_alpha: int = Field(32, ge=1)
    lora_dropout: float = Field(0.05, ge=0, lt=1)


class HfDataset(Strict):
    """One dataset of JSONL files; relative paths are relative to lab.toml."""
    shape: Literal["binary", "pairwise"]
    labelled: str        # the weak teacher's labelled split
    train: str           # the strong model's training split (labels: private, for the ceiling)
    test: str            # scored (labels: private)
    template: str | None = None          # default: DEFAULT_TEMPLATES[shape]
    label_words: list[str] | None = Field(None, min_length=2, max_length=2)   # default: LABEL_WORDS[shape]

    @property
    def prompt_template(self) -> str:
        return self.template or DEFAULT_TEMPLATES[self.shape]

    @property
    def words(self) -> list[str]:
        return self.label_words or LABEL_WORDS[self.shape]


class HfSection(Strict):
    """The `hf` task kind: any Hugging Face strong and weak causal LMs, the person's own datasets."""
    strong: str          # a Hub id found in the local Hugging Face cache, or a folder
    weak: str
    datasets: dict[str, HfDataset] = Field(min_length=1)
    strong_training: HfTraining = HfTraining()
    weak_training: HfTraining = HfTraining(epochs=3, lr=5e-4)


class TaskSection(Strict, TaskDatasets):
    kind: Literal["embedded", "hf"] = "embedded"
    dev: str = "rotten_tomatoes"
    heldout: list[str] = ["imdb", "tweets"]
    seeds: int = Field(5, ge=1, le=50)
    split_seed: int = 0
    max_tokens: int = Field(256, ge=8, le=512)
    batch_size: int = Field(64, ge=1)
    min_gap: float = Field(0.10, ge=0.0, le=1.0)
    sizes: dict[str, SplitSizes] = Field(default_factory=_default_sizes)
    hf: HfSection | None = None

    @model_validator(mode="after")
    def _known_datasets(self) -> "TaskSection":
        if self.kind == "hf":
            return self._known_hf_datasets()
        if self.hf is not None:
            raise ValueError('task.hf is set but task.kind is "embedded" (set task.kind = "hf" to use it)')
        for where, name in [("dev", self.dev)] + [("heldout", n) for n in self.heldout] + [
            ("sizes", n) for n in self.sizes
        ]:
            if name not in DATASETS:
                raise ValueError(
                    f"task.{where} names unknown dataset {name!r} (expected one of: {', '.join(DATASETS)})"
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
        return self.sizes.get(dataset) or SplitSizes(**DATASETS[dataset].default_sizes)


class ScorerSection(Strict, RunLimits):
    seeds: int = Field(5, ge=1, le=50)
    timeout_s: float | None = Field(None, gt=0)   # the old, wall-clock-only limit: alone, it keeps its old meaning
    run_cpu_s: float = Field(180, gt=0)           # CPU seconds a method run may use, all its processes together
    run_wall_s: float | None = Field(None, gt=0)  # wall-clock backstop for hung runs; default 5 x run_cpu_s
    # a run using (or waiting for) under 1% of a core for this long is hung (lab/sandbox/stall.py): 20 x the longest
    # such stretch of a healthy baseline run beside busy processes, 1.5 s (bench/bench_stall.py, 2 cores, load 16)
    stall_s: float = Field(30, gt=0)
    gpu_stall_s: float = Field(300, gt=0)  # the same for a run holding a GPU, whose busy device is progress too
    memory_mb: int = Field(6144, ge=256)
    max_processes: int = Field(256, ge=8)
    max_output_mb: float = Field(16, gt=0)
    parallel: int = Field(2, ge=1)
    runs_per_gpu: int = Field(1, ge=1)     # method runs sharing one GPU at once (each queues for a slot)
    threads_per_run: int = Field(1, ge=1)
    check_seeds: int = Field(2, ge=1)      # runs with the second teacher, per set never seen (the teacher check)
    flag_dependence_z: float = Field(2.0, ge=0)   # ignores_teacher: texts moved with and against it differ by less
    flag_overfit_public: float = Field(0.05, ge=0)      # flag when public dev PGR exceeds private by more than this,
    flag_overfit_z: float = Field(2.0, ge=0)            # ... even this many SE of the difference below it
    flag_heldout_gap: float = 0.3
    evaluate_noise: float = Field(3.0, ge=0)     # SD of the noise on each accuracy told to an agent, in test texts
    evaluate_budget: int = Field(400, ge=0)
    submit_budget: int = Field(12, ge=0)
    budget_window_hours: float = Field(1.0, gt=0)
    host: str = "127.0.0.1"
    port: int = Field(0, ge=0, le=65535)

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
    count: int = Field(9, ge=1, le=64)
    backend: Literal["auto", "researcher", "claude", "scripted"] = "auto"
    directions: list[str] = Field(default_factory=lambda: list(DIRECTIONS), min_length=1)
    max_restarts: int = Field(5, ge=0)
    restart_backoff_s: float = Field(2.0, ge=0)
    grace_s: float = Field(3.0, ge=0)
    shell_timeout_s: float = Field(300, gt=0)
    shell_memory_mb: int = Field(4096, ge=256)
    shell_processes: int = Field(256, ge=8)
    shell_file_mb: float = Field(256, gt=0)
    tmp_mb: int = Field(1024, ge=16)
    output_chars: int = Field(10000, ge=200)
    git_message_kb: float = Field(64, gt=0)
    git_blob_mb: float = Field(64, gt=0)
    git_publish_mb: float = Field(256, gt=0)
    git_publish_objects: int = Field(20000, ge=100)
    repeat_limit: int = Field(5, ge=2)
    step_pause_s: float = Field(0.0, ge=0)
    disk_quota: Literal["auto", "loop", "measured", "off"] = "auto"   # how disk_mb holds (lab/sandbox/disk_quota.py)
    disk_mb: int = Field(10240, ge=4)              # each agent's worktree, its git objects and files together
    publish_mb_per_hour: float = Field(1024, gt=0)   # bundle bytes an agent's publishes bring into research.git
    prune_every_minutes: float = Field(10, gt=0)     # research.git: unreachable objects pruned this often ...
    prune_grace_minutes: float = Field(60, ge=0)     # ... once they are this old (an in-flight publish is newer)
    script: str | None = None   # backend = "scripted": a JSON file of turns (tests and demos)

    @model_validator(mode="after")
    def _script_given(self) -> "AgentsSection":
        if self.backend == "scripted" and not self.script:
            raise ValueError("agents.backend = \"scripted\" needs agents.script (a JSON file of turns)")
        return self


class Limit(Strict):
    """0 means no limit."""
    hours: float = Field(0, ge=0)
    dollars: float = Field(0, ge=0)
    tokens: int = Field(0, ge=0)
    scorer_queries: int = Field(0, ge=0)


class BudgetSection(Strict):
    agent: Limit = Limit(dollars=20.0)
    lab: Limit = Limit(dollars=150.0)


class Prices(Strict):
    """Dollars per million tokens. Each price left out comes from the backend's table of models
    (lab/agents/backends/claude/models.toml); a model the table does not know needs all five."""
    input: float | None = Field(None, ge=0)
    output: float | None = Field(None, ge=0)            # thinking tokens are output tokens
    cache_write: float | None = Field(None, ge=0)       # a 5-minute cache write
    cache_write_1h: float | None = Field(None, ge=0)    # a 1-hour cache write
    cache_read: float | None = Field(None, ge=0)


Effort = Literal["low", "medium", "high", "xhigh", "max"]


class ClaudeSection(Strict):
    model: str = "claude-sonnet-5-5"
    models: dict[str, str] = {}          # per agent, e.g. {"agent-3" = "claude-opus-5-5"}; others use `model`
    thinking: Literal["adaptive", "off"] = "adaptive"   # "off": the least thinking each model allows
    effort: Effort | None = None         # output_config.effort; None: each model's own default
    efforts: dict[str, Effort] = {}      # per agent, e.g. {"agent-3" = "max"}; others use `effort`
    thinking_budget: int = Field(0, ge=0)         # budget_tokens, for models with extended thinking only; 0: off
    max_tokens: int | None = Field(None, ge=256)  # per reply; None: the model's default in the table
    context_tokens: int = Field(120000, ge=2000)
    timeout_s: float | None = Field(None, gt=0)   # None: follows max_tokens
    max_retries: int = Field(8, ge=0)
    retry_base_s: float = Field(2.0, ge=0)
    retry_max_wait_s: float = Field(60.0, gt=0)   # the longest single wait, a server's retry-after included
    base_url: str | None = None
    cache_ttl: Literal["5m", "1h"] = "5m"         # prompt-cache lifetime: each lifetime's writes have their own price
    prices: Prices = Prices()                     # of `model`, over the table's
    model_prices: dict[str, Prices] = {}          # of other models, over the table's

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
    gpus: list[str] = []              # e.g. ["0", "1"] or MIG UUIDs; empty: found with nvidia-smi
    cpus_per_agent: int = Field(0, ge=0)  # 0: the machine's cores shared out evenly


class ClusterSection(Strict):
    """Where method runs execute: this machine, or a Ray cluster (docs/cluster.md)."""
    engine: Literal["local", "ray"] = "local"
    address: str = "auto"            # "auto" (the cluster `ray start` made here), "HOST:PORT" or "ray://HOST:PORT"
    node_cache: str = "/var/tmp/lab-cluster"   # on each node: the view files it was sent, by hash
    max_retries: int = Field(3, ge=0)          # attempts after the first, where a node or worker dies under a run
    object_cache_mb: int = Field(2048, ge=16)  # view files the head keeps in Ray's object store

    @model_validator(mode="after")
    def _address(self) -> "ClusterSection":
        address = self.address.removeprefix("ray://")
        host, _, port = address.rpartition(":")
        if self.address != "auto" and not (host and port.isdigit() and 0 < int(port) < 65536):
            raise ValueError(f'cluster.address must be "auto", "HOST:PORT" or "ray://HOST:PORT", got {self.address!r}')
        if not self.node_cache.startswith("/"):
            raise ValueError(f"cluster.node_cache must be an absolute path (one on every node), got {self.node_cache!r}")
        return self


class Config(Strict, LabPaths):
    lab: LabSection = LabSection()
    task: TaskSection = TaskSection()
    scorer: ScorerSection = ScorerSection()
    agents: AgentsSection = AgentsSection()
    budget: BudgetSection = BudgetSection()
    claude: ClaudeSection = ClaudeSection()
    slices: SlicesSection = SlicesSection()
    cluster: ClusterSection = ClusterSection()

    # Set by load(): where the file was, so relative paths resolve against it.
    root: Path = Path(".")

    @model_validator(mode="after")
    def _claude_models_name_agents(self) -> "Config":
        self.claude.check_agents(self.agents.names)
        return self

    def scoring_fingerprint(self) -> str:
        """A short hash of everything that decides a score, recorded beside each one."""
        task = self.task.model_dump(exclude={"hf"} if self.task.hf is None else None)
        relevant = {"task": task, "scorer": self.scorer.model_dump(
            include={"seeds", "timeout_s", "run_cpu_s", "run_wall_s", "memory_mb", "check_seeds"})}
        return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:12]


def _describe(error: dict) -> str:
    loc = ".".join(str(p) for p in error["loc"] if p != "root") or "(top level)"
    kind = error["type"]
    if kind == "extra_forbidden":
        return f"{loc}: unknown key"
    if kind == "value_error":
        return str(error["ctx"]["error"]) if "ctx" in error else error["msg"]
    return f"{loc}: {error['msg'][0].lower()}{error['msg'][1:]}, got {error.get('input')!r}"


def _expected_keys(model: type[BaseModel], loc: tuple) -> list[str]:
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        if field is None or not isinstance(field.annotation, type) or not issubclass(field.annotation, BaseModel):
            return []
        model = field.annotation
    return [k for k in model.model_fields if k != "root"]


def _unknown_key(loc: tuple) -> str:
    """What follows "unknown key": the closest valid key where one is close, and every valid key."""
    expected = _expected_keys(Config, loc)
    if not expected:
        return ""
    guess = closest(str(loc[-1]), expected)
    return f"{f'; did you mean {guess!r}?' if guess else ''} (expected one of: {', '.join(expected)})"


def parse(data: dict, root: Path, source: str = "lab.toml", text: str | None = None) -> Config:
    """The validated settings, or a ConfigError of one line that names the key (with its line, where `text`, the
    file's own text, shows it)."""
    if "root" in data:
        raise ConfigError(f"{source}: root: unknown key")
    try:
        return Config(**data, root=root)
    except ValidationError as exc:
        error = exc.errors()[0]
        line = _describe(error)
        if error["type"] == "extra_forbidden":
            line += _unknown_key(tuple(error["loc"]))
        number = key_line(text, tuple(error["loc"])) if text is not None else None
        where = f"{source}, line {number}" if number else source
        raise ConfigError(f"{where}: {line}") from None


def load(path: Path | str, remember: bool = False) -> Config:
    """lab.toml, validated. With `remember`, the validated settings are also kept in the lab's state folder (where
    it exists), for read-only commands to find without validating the same file again (lab.config_cache)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} not found (expected a lab.toml; pass --config FILE)")
    raw = path.read_bytes()
    try:
        data = tomllib.loads(raw.decode())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    cfg = parse(data, root=path.resolve().parent, source=str(path), text=raw.decode())
    if remember:
        from lab import config_cache

        config_cache.remember(path, raw, cfg)
    return cfg
