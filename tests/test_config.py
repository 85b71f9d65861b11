"""Bad configuration: one line naming the key and the expected form, exit code 2, nothing started."""
import pytest

from conftest import run_lab
from lab import config


@pytest.mark.parametrize("toml, line", [
    ('[scorer]\ntimeout_s = "soon"\n', "scorer.timeout_s: input should be a valid number"),
    ("[scorer]\ntimeot_s = 3\n", "scorer.timeot_s: unknown key (expected one of: seeds, timeout_s,"),
    ("[labb]\n", "labb: unknown key (expected one of: lab, task, scorer, agents, budget, claude, slices, cluster)"),
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
    ("[budget.team]\n", "budget.team: unknown key (expected one of: agent, lab)"),
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
