"""Bad configuration: one line naming the key and the expected form, exit code 2, nothing started."""
import pytest

from conftest import run_lab
from lab import config


@pytest.mark.parametrize("toml, line", [
    ('[scorer]\ntimeout_s = "soon"\n', "scorer.timeout_s: input should be a valid number"),
    ("[scorer]\ntimeot_s = 3\n",
     "lab.toml, line 2: scorer.timeot_s: unknown key; did you mean 'timeout_s'? (expected one of: seeds, timeout_s,"),
    ("[labb]\n", "lab.toml, line 1: labb: unknown key; did you mean 'lab'? (expected one of: lab, task, scorer, agents, "
                 "budget, claude, slices, cluster)"),
    ('[cluster]\nengine = "dask"\n', "cluster.engine: input should be 'local' or 'ray'"),
    ('[cluster]\naddress = "head-node"\n', 'cluster.address must be "auto", "HOST:PORT" or "ray://HOST:PORT", got \'head-node\''),
    ('[cluster]\nnode_cache = "cache"\n', "cluster.node_cache must be an absolute path (one on every node)"),
    ('[task]\ndev = "sst2"\n', "task.dev names unknown dataset 'sst2' (expected one of: rotten_tomatoes, imdb, tweets)"),
    ('[task]\nheldout = ["imdb", "yelp"]\n', "task.heldout names unknown dataset 'yelp'"),
    ('[lab]\nsandbox = "docker"\n', "lab.sandbox: input should be 'bwrap' or 'none'"),
    ("[task.sizes.imdb]\ntrain = 5\n", "task.sizes.imdb.train: input should be greater than or equal to 20"),
    ("[task\n", "not valid TOML"),
    ('[agents]\nbackend = "gpt"\n', "agents.backend: input should be 'auto', 'researcher', 'claude' or 'scripted'"),
    ('[agents]\nbackend = "scripted"\n', 'agents.backend = "scripted" needs agents.script'),
    ("[agents]\ncount = 0\n", "agents.count: input should be greater than or equal to 1"),
    ("[budget.agent]\ndollars = -1\n", "budget.agent.dollars: input should be greater than or equal to 0"),
    ("[budget.team]\n", "lab.toml, line 1: budget.team: unknown key (expected one of: agent, lab)"),
    ('[slices]\ngpus = "0,1"\n', "slices.gpus: input should be a valid list"),
    ('[task]\nkind = "hf"\n', 'task.kind = "hf" needs a [task.hf] section (strong, weak, datasets)'),
    ('[task]\nkind = "hf"\ndev = "chat"\nheldout = []\n[task.hf]\nstrong = "s"\nweak = "w"\n'
     '[task.hf.datasets.code]\nshape = "binary"\nlabelled = "a"\ntrain = "b"\ntest = "c"\n',
     "task.dev names dataset 'chat', which [task.hf.datasets] does not define (expected one of: code)"),
    ('[task]\nkind = "hf"\ndev = "chat"\nheldout = []\n[task.hf]\nstrong = "s"\nweak = "w"\n'
     '[task.hf.datasets.chat]\nshape = "ranking"\nlabelled = "a"\ntrain = "b"\ntest = "c"\n',
     "task.hf.datasets.chat.shape: input should be 'binary' or 'pairwise'"),
    ('[task.hf]\nstrong = "s"\nweak = "w"\n[task.hf.datasets.chat]\nshape = "binary"\nlabelled = "a"\n'
     'train = "b"\ntest = "c"\n', 'task.hf is set but task.kind is "embedded"'),
])
def test_bad_config_is_one_line_exit_2_and_nothing_is_created(tmp_path, toml, line):
    (tmp_path / "lab.toml").write_text(toml)
    result = run_lab("init", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert line in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lab.toml"]


def test_the_example_configuration_for_the_study_loads():
    from pathlib import Path

    cfg = config.load(Path(__file__).parents[1] / "examples" / "qwen3-4b-chat.toml")
    assert cfg.task.kind == "hf" and cfg.task.datasets == ["chat", "math", "code"]
    assert cfg.task.hf.datasets["chat"].words == [" A", " B"]


def test_a_missing_config_file_is_named(tmp_path):
    result = run_lab("--config", str(tmp_path / "nope.toml"), "score", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == (f"lab: error: config file {tmp_path / 'nope.toml'} not found "
                                     "(expected a lab.toml; pass --config FILE)")


def test_the_checked_in_config_is_the_default():
    from pathlib import Path

    checked_in = config.load(Path(__file__).parents[1] / "lab.toml")
    default = config.parse({}, root=checked_in.root)
    assert checked_in == default


def test_a_lab_without_a_testbed_says_to_run_init(tmp_path):
    (tmp_path / "lab.toml").write_text('[lab]\nsandbox = "none"\n')
    result = run_lab("score", "--method", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 2
    assert "the testbed is not prepared" in result.stderr and "run `lab init`" in result.stderr


def test_an_error_names_the_line_of_the_key_in_any_toml_form():
    from lab.toml_lines import key_line

    text = ('[lab]\nsandbox = "none"\n\n[scorer]  # runs\nseeds = 2\ntimeot_s = 3\n[task.sizes.imdb]\ntrian = 5\n'
            '[labb.deep]\nx.y = 1\n"quoted.key" = 2\n[agents]\nlimits = { grace = 3 }\n')
    assert key_line(text, ("scorer", "timeot_s")) == 6
    assert key_line(text, ("task", "sizes", "imdb", "trian")) == 8
    assert key_line(text, ("labb",)) == 9                     # the first table under it
    assert key_line(text, ("labb", "deep", "x", "y")) == 10   # a dotted key
    assert key_line(text, ("labb", "deep", "quoted.key")) == 11
    assert key_line(text, ("agents", "limits", "grace")) == 13  # inside an inline table: the table's line
    assert key_line(text, ("scorer", "not_there")) == 4         # a missing key: its table's line
    assert key_line(text, ("nowhere",)) is None


def test_did_you_mean_names_one_key_only_where_one_stands_out():
    from lab.suggest import closest

    assert closest("timeot_s", ["seeds", "timeout_s", "run_cpu_s"]) == "timeout_s"
    assert closest("agent-x", [f"agent-{i}" for i in range(1, 10)]) is None      # all as close: no guess
    assert closest("zzz", ["seeds", "timeout_s"]) is None
