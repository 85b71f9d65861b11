"""The `hf` task kind end to end on a GPU machine: `lab init` and one full submission, timed.

    python bench/bench_hf_submission.py [--rows 512] [--seeds 5] [--seq 512] [--smoke]

A temporary lab gets random-weight models of the study's shapes (strong: Qwen3-4B; weak: Qwen1.5-0.5B,
as Qwen3-style configs), saved to disk with a word-level tokenizer (nothing is downloaded), and
synthetic pairwise (dev) and binary (held-out) JSONL datasets of --rows rows per split, each prompt
padded with filler words to about --seq tokens. It times the real `lab init` (the weak teacher over the
seeds, the views, the ceilings) and the real `lab score --method` of the scaffold's vanilla method: one
full submission (seeds x sets, plus the second teacher's check runs), every run queued for a GPU slot.
Speed depends on the shapes and sizes, not on the weights. `--smoke` shrinks everything so that a
machine without a GPU checks the code path; its times mean nothing.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import tiny_hf  # noqa: E402  (tests/tiny_hf.py: the offline tokenizer and the synthetic datasets)

STRONG = dict(hidden_size=2560, intermediate_size=9728, num_hidden_layers=36, num_attention_heads=32,
              num_key_value_heads=8, head_dim=128)          # Qwen3-4B
WEAK = dict(hidden_size=1024, intermediate_size=2816, num_hidden_layers=24, num_attention_heads=16,
            num_key_value_heads=16, head_dim=64)            # Qwen1.5-0.5B
SMOKE = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
             num_key_value_heads=4, head_dim=8)
TEACHER_NOISE = 0.3   # labels flipped in the teacher's labelled split, so that it is weak and PGR has a gap
VOCAB = 151936
FILLER_WORDS = ["context", "note", "detail", "background", "aside"]


def save_model(folder: Path, words: list[str], shape: dict, vocab: int) -> None:
    """A random-weight Qwen3 causal LM of `shape` in bf16, with the word-level tokenizer of tests/tiny_hf."""
    import torch
    from transformers import AutoModelForCausalLM, Qwen3Config

    tiny_hf.make_tiny_model(folder, words, hidden=16, layers=1)       # the tokenizer (and a placeholder model)
    tokens = len(json.loads((folder / "tokenizer.json").read_text())["model"]["vocab"])
    config = Qwen3Config(vocab_size=max(vocab, tokens), max_position_embeddings=4096, pad_token_id=0,
                         eos_token_id=2, bos_token_id=None, tie_word_embeddings=False, **shape)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    if shape is SMOKE:    # as tests/tiny_hf.py: a tiny head needs room for confident logits to learn at all
        with torch.no_grad():
            model.lm_head.weight.normal_(0.0, 0.2)
    model.save_pretrained(folder)
    for path in folder.iterdir():
        path.chmod(0o644)


def lab_toml(args, template_extra: str) -> str:
    pairwise = json.dumps(template_extra + tiny_hf.PAIRWISE_TEMPLATE)
    binary = json.dumps(template_extra + tiny_hf.BINARY_TEMPLATE)
    # random weights learn slowly: a higher learning rate than for a pretrained model
    epochs, lr = (3, 3e-3) if args.smoke else (2, 1e-3)
    training = f"epochs = {epochs}\nlr = {lr}\nbatch_size = {args.batch}\nmax_length = {args.seq + 48}\n"
    # a smoke run's teacher is the tiny model trained briefly (as in tests/test_hf_task.py), so that on 48 rows the
    # ceiling stays above it and `lab init` finds a gap
    weak = f"epochs = 1\nlr = 1e-3\nbatch_size = {args.batch}\nmax_length = {args.seq + 48}\n" if args.smoke else training
    sandbox = "bwrap" if shutil.which("bwrap") else "none"
    return f"""[lab]
sandbox = "{sandbox}"

[task]
kind = "hf"
dev = "prefs"
heldout = ["fruit"]
seeds = {args.seeds}

[task.hf]
strong = "models/strong"
weak = "models/weak"

[task.hf.strong_training]
{training}
[task.hf.weak_training]
{weak}
[task.hf.datasets.prefs]
shape = "pairwise"
labelled = "data/pairwise/labelled.jsonl"
train = "data/pairwise/train.jsonl"
test = "data/pairwise/test.jsonl"
template = {pairwise}
label_words = {json.dumps(tiny_hf.PAIRWISE_LABEL_WORDS)}

[task.hf.datasets.fruit]
shape = "binary"
labelled = "data/binary/labelled.jsonl"
train = "data/binary/train.jsonl"
test = "data/binary/test.jsonl"
template = {binary}
label_words = {json.dumps(tiny_hf.BINARY_LABEL_WORDS)}

[scorer]
seeds = {args.seeds}
check_seeds = 1
timeout_s = 14400
memory_mb = 131072
parallel = 8
runs_per_gpu = {args.runs_per_gpu}
"""


def noisy(path: Path, seed: int = 0) -> None:
    import random

    rng = random.Random(seed)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    for row in rows:
        if rng.random() < TEACHER_NOISE:
            row["label"] = 1 - row["label"]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def timed(argv: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "lab.cli", *argv], cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        tail = (result.stderr.strip().splitlines() or ["no output"])[-1]
        print(f"bench_hf_submission: `lab {' '.join(argv)}` failed: {tail}", file=sys.stderr)
        sys.exit(1)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=512, help="rows per split (labelled, train, test)")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--seq", type=int, default=512, help="about this many tokens per prompt")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--runs-per-gpu", type=int, default=1)
    parser.add_argument("--smoke", action="store_true", help="tiny shapes and sizes: check the code path on CPU")
    parser.add_argument("--keep", action="store_true", help="keep the temporary lab folder")
    args = parser.parse_args()
    import torch

    if args.smoke:
        args.rows, args.seeds, args.seq, args.batch = min(args.rows, 48), 1, min(args.seq, 16), 16
    elif not torch.cuda.is_available():
        print("bench_hf_submission: a CUDA GPU is needed (`--smoke` checks the code path on CPU)", file=sys.stderr)
        sys.exit(2)
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU (smoke run)"
    folder = Path(tempfile.mkdtemp(prefix="bench-hf-"))
    try:
        filler = " ".join(FILLER_WORDS[i % len(FILLER_WORDS)] for i in range(max(0, args.seq - 24))) + "\n"
        words = tiny_hf.all_words() + FILLER_WORDS
        start = time.perf_counter()
        save_model(folder / "models" / "strong", words, SMOKE if args.smoke else STRONG, 0 if args.smoke else VOCAB)
        save_model(folder / "models" / "weak", words, SMOKE if args.smoke else WEAK, 0 if args.smoke else VOCAB)
        for splits in tiny_hf.tiny_jsonl_datasets(folder / "data", n=args.rows).values():
            noisy(splits["labelled"])
        (folder / "lab.toml").write_text(lab_toml(args, filler))
        made = time.perf_counter() - start
        method = folder / "method"
        shutil.copytree(ROOT / "lab" / "scaffold" / "template_hf", method,
                        ignore=shutil.ignore_patterns("__pycache__"))
        init_s = timed(["init"], folder)
        submit_s = timed(["score", "--method", str(method / "method.py")], folder)
        checks = 2     # check_seeds (1) runs with the second teacher on each set never seen: prefs_private, fruit
        runs = args.seeds * 3 + checks
        print(f"GPU: {gpu}; torch {torch.__version__}")
        print(f"models: strong {'smoke' if args.smoke else 'Qwen3-4B shape'}, weak {'smoke' if args.smoke else 'Qwen1.5-0.5B shape'}, "
              f"random bf16 weights, written in {made:.0f} s")
        print(f"data: {args.rows} rows per split, ~{args.seq} tokens per prompt, {args.seeds} seeds")
        print(f"lab init (weak teachers x {args.seeds} seeds, ceilings x {args.seeds} x 3 sets): {init_s:.1f} s")
        print(f"one full submission ({runs} method runs: {args.seeds} seeds x 3 sets + {checks} second-teacher, "
              f"{args.runs_per_gpu} per GPU): {submit_s:.1f} s")
        if args.smoke:
            print("NOTE: a smoke run only checks the code path; its times mean nothing for a GPU")
    finally:
        if args.keep:
            print(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
