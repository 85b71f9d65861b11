"""What `lab init` commits into the research repository: the agents' starting library and baselines.

Modules that both kinds' libraries hold (w2s/select.py and w2s_hf/select.py, ...) have one source,
common/, copied into each template's package (lab.scaffold.copies; no links), so that each template is
an importable package in place and a research repository's first commit holds the files themselves.
"""
from pathlib import Path

TEMPLATE = Path(__file__).parent / "template"
BASELINES = ("vanilla", "confident", "logconf", "smooth", "bootstrap", "elicit")

# kind = "hf": a Hugging Face causal LM fine-tuned with LoRA (importable as lab.scaffold.template_hf.w2s_hf).
TEMPLATE_HF = Path(__file__).parent / "template_hf"
BASELINES_HF = ("vanilla", "confident", "logconf")

COMMON = Path(__file__).parent / "common"


def template_for(task) -> Path:
    return TEMPLATE_HF if task.kind == "hf" else TEMPLATE


def baselines_for(task) -> tuple[str, ...]:
    return BASELINES_HF if task.kind == "hf" else BASELINES
