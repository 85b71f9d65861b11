"""LoRA training and inference throughput of a Qwen3-4B-shaped causal LM (random weights) on one GPU.

    python bench/bench_hf_gpu.py [--seq 512] [--batch 8] [--steps 10] [--layers 36] [--device cuda]

What the `hf` task's strong model costs per method run: LoRA (r=16 on q, k, v, o, gate, up, down) with a
classifier loss over two label tokens' logits at the last position, in bf16, as examples per second and
peak GPU memory (torch.cuda.max_memory_allocated); then inference examples per second. The weights are
random (nothing is downloaded): speed and memory depend on the shape, not on the values. Runs on the
first visible GPU. `--layers 2` is a quick check; the size options shrink the model further so that
`--device cpu` can smoke-test the code path, where the figures mean nothing.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

# Qwen3-4B (Qwen/Qwen3-4B-Base config.json)
QWEN3_4B = dict(layers=36, hidden=2560, intermediate=9728, heads=32, kv_heads=8, head_dim=128, vocab=151936)
LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
DTYPES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda (the first visible GPU), cuda:N, or cpu (smoke test)")
    parser.add_argument("--seq", type=int, default=512, help="tokens per example")
    parser.add_argument("--batch", type=int, default=8, help="examples per step")
    parser.add_argument("--steps", type=int, default=10, help="timed steps (training, then inference)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    parser.add_argument("--layers", type=int, default=QWEN3_4B["layers"], help="decoder layers (36: Qwen3-4B)")
    parser.add_argument("--hidden", type=int, default=QWEN3_4B["hidden"])
    parser.add_argument("--intermediate", type=int, default=QWEN3_4B["intermediate"])
    parser.add_argument("--heads", type=int, default=QWEN3_4B["heads"])
    parser.add_argument("--kv-heads", type=int, default=QWEN3_4B["kv_heads"])
    parser.add_argument("--head-dim", type=int, default=QWEN3_4B["head_dim"])
    parser.add_argument("--vocab", type=int, default=QWEN3_4B["vocab"])
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="bf16")
    parser.add_argument("--attn", default="sdpa", help="attention implementation: sdpa, eager, flash_attention_2")
    parser.add_argument("--lora-r", type=int, default=16)
    parser.add_argument("--lora-alpha", type=int, default=32)
    parser.add_argument("--grad-ckpt", action="store_true", help="gradient checkpointing (less memory, slower)")
    parser.add_argument("--memory-fraction", type=float,
                        default=float(os.environ["LAB_GPU_MEMORY_FRACTION"]) if os.environ.get(
                            "LAB_GPU_MEMORY_FRACTION") else None,
                        help="torch.cuda.set_per_process_memory_fraction, as the scorer's GPU queue sets it "
                             "(default: $LAB_GPU_MEMORY_FRACTION, else none)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    for name in ("seq", "batch", "steps", "layers", "hidden", "intermediate", "heads", "kv_heads", "head_dim",
                 "vocab", "lora_r"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.warmup < 0:
        parser.error("--warmup must be 0 or more")
    if args.heads % args.kv_heads:
        parser.error(f"--heads ({args.heads}) must be a multiple of --kv-heads ({args.kv_heads})")
    if args.memory_fraction is not None and not 0 < args.memory_fraction <= 1:
        parser.error(f"--memory-fraction must be in (0, 1], not {args.memory_fraction}")
    return args


def count(n: int) -> str:
    return f"{n / 1e9:.2f} B" if n >= 1e9 else f"{n / 1e6:.1f} M" if n >= 1e6 else f"{n:,}"


def fail(message: str, code: int = 2) -> None:
    print(f"bench_hf_gpu: {message}", file=sys.stderr)
    raise SystemExit(code)


def build_model(args, torch, device):
    from peft import LoraConfig, get_peft_model
    from transformers import Qwen3Config, Qwen3ForCausalLM

    dtype = getattr(torch, DTYPES[args.dtype])
    config = Qwen3Config(hidden_size=args.hidden, intermediate_size=args.intermediate,
                         num_hidden_layers=args.layers, num_attention_heads=args.heads,
                         num_key_value_heads=args.kv_heads, head_dim=args.head_dim, vocab_size=args.vocab,
                         max_position_embeddings=max(32768, args.seq), tie_word_embeddings=True,
                         rope_theta=1_000_000, use_cache=False)
    config._attn_implementation = args.attn
    torch.manual_seed(args.seed)
    default = torch.get_default_dtype()
    torch.set_default_dtype(dtype)          # the weights are made in bf16 on the device: no fp32 copy first
    try:
        with torch.device(device):
            base = Qwen3ForCausalLM(config)
    finally:
        torch.set_default_dtype(default)
    if args.grad_ckpt:
        base.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        base.enable_input_require_grads()
    lora = LoraConfig(r=args.lora_r, lora_alpha=args.lora_alpha, lora_dropout=0.05, target_modules=LORA_TARGETS,
                      task_type="CAUSAL_LM")
    return get_peft_model(base, lora), config


def synchronize(torch, device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_gib(torch, device) -> str:
    if device.type != "cuda":
        return "n/a on CPU"
    return f"{torch.cuda.max_memory_allocated(device) / 2**30:.2f} GiB"


def reset_peak(torch, device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def run(args) -> None:
    warnings.filterwarnings("ignore", category=FutureWarning, module="transformers")   # deprecation notes
    try:
        import torch
    except ImportError:
        fail("torch is not installed (pip install torch)")
    try:
        import peft  # noqa: F401
        import transformers
    except ImportError as exc:
        fail(f"{exc.name} is not installed (pip install transformers peft)")

    try:
        device = torch.device(args.device)
    except RuntimeError:
        fail(f"--device {args.device}: expected cuda, cuda:N or cpu")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            fail(f"a CUDA GPU is needed and torch {torch.__version__} finds none "
                 f"(CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')!r}); "
                 "`--device cpu` with small sizes only smoke-tests the code")
        device = torch.device("cuda", device.index or 0)
        if device.index >= torch.cuda.device_count():
            fail(f"no GPU {device.index}: torch sees {torch.cuda.device_count()}")
        torch.cuda.set_device(device)
        if args.memory_fraction is not None:
            torch.cuda.set_per_process_memory_fraction(args.memory_fraction, device)
        torch.backends.cuda.matmul.allow_tf32 = True
        name = torch.cuda.get_device_name(device)
        total = torch.cuda.get_device_properties(device).total_memory / 2**30
        print(f"device: {name} ({total:.0f} GiB), torch {torch.__version__}, transformers {transformers.__version__}"
              + (f", memory fraction {args.memory_fraction:g}" if args.memory_fraction is not None else ""))
    elif device.type == "cpu":
        print(f"device: CPU, torch {torch.__version__}, transformers {transformers.__version__}")
        print("NOTE: a CPU run only smoke-tests the code path; its figures mean nothing for a GPU")
    else:
        fail(f"--device {args.device}: expected cuda, cuda:N or cpu")

    shape = (f"{args.layers} layers, hidden {args.hidden}, intermediate {args.intermediate}, heads {args.heads}/"
             f"{args.kv_heads} kv x {args.head_dim}, vocab {args.vocab}")
    is_4b = all(getattr(args, k) == v for k, v in QWEN3_4B.items())
    print(f"model: Qwen3 causal LM, random weights, {args.dtype}, {shape}" + (" (Qwen3-4B)" if is_4b else ""))

    start = time.perf_counter()
    model, config = build_model(args, torch, device)
    synchronize(torch, device)
    total_params = sum(p.numel() for p in model.parameters())
    trainable = [p for p in model.parameters() if p.requires_grad]
    print(f"built in {time.perf_counter() - start:.1f} s: {count(total_params)} parameters, "
          f"{count(sum(p.numel() for p in trainable))} trainable (LoRA r={args.lora_r} on "
          f"{', '.join(t.removesuffix('_proj') for t in LORA_TARGETS)})"
          + (f"; weights {torch.cuda.memory_allocated(device) / 2**30:.2f} GiB" if device.type == "cuda" else ""))
    print(f"batch {args.batch} x {args.seq} tokens, {args.warmup} warm-up + {args.steps} timed steps, "
          f"attention {args.attn}" + (", gradient checkpointing" if args.grad_ckpt else ""))

    generator = torch.Generator(device="cpu").manual_seed(args.seed)
    label_ids = torch.tensor([min(15, args.vocab - 2), min(16, args.vocab - 1)], device=device)  # two label words
    batches = [(torch.randint(0, args.vocab, (args.batch, args.seq), generator=generator).to(device),
                torch.randint(0, 2, (args.batch,), generator=generator).to(device)) for _ in range(4)]
    mask = torch.ones(args.batch, args.seq, dtype=torch.long, device=device)
    optimizer = torch.optim.AdamW(trainable, lr=2e-4)

    def class_logits(input_ids):
        # only the last position's logits: the full (batch, seq, vocab) tensor would cost gigabytes
        out = model(input_ids=input_ids, attention_mask=mask, logits_to_keep=1)
        return out.logits[:, -1, :].index_select(-1, label_ids).float()

    def train_step(i: int) -> float:
        input_ids, labels = batches[i % len(batches)]
        loss = torch.nn.functional.cross_entropy(class_logits(input_ids), labels)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss.detach()

    try:
        model.train()
        reset_peak(torch, device)
        for i in range(args.warmup):
            train_step(i)
        synchronize(torch, device)
        start = time.perf_counter()
        for i in range(args.steps):
            loss = train_step(i)
        synchronize(torch, device)
        took = time.perf_counter() - start
        examples = args.steps * args.batch
        print(f"LoRA training:  {examples / took:8.2f} examples/s  {examples * args.seq / took:10.0f} tokens/s  "
              f"{took / args.steps * 1000:8.1f} ms/step  peak memory {peak_gib(torch, device)}  "
              f"(last loss {float(loss):.3f})")

        model.eval()
        optimizer.state.clear()        # free the AdamW moments before measuring inference memory
        if device.type == "cuda":
            torch.cuda.empty_cache()
        reset_peak(torch, device)
        with torch.inference_mode():
            for i in range(args.warmup):
                class_logits(batches[i % len(batches)][0])
            synchronize(torch, device)
            start = time.perf_counter()
            for i in range(args.steps):
                probs = class_logits(batches[i % len(batches)][0]).softmax(-1)
            synchronize(torch, device)
        took = time.perf_counter() - start
        print(f"inference:      {examples / took:8.2f} examples/s  {examples * args.seq / took:10.0f} tokens/s  "
              f"{took / args.steps * 1000:8.1f} ms/step  peak memory {peak_gib(torch, device)}  "
              f"(p1 of the last batch's first example {float(probs[0, 1]):.3f})")
    except torch.cuda.OutOfMemoryError:
        fail(f"out of GPU memory at batch {args.batch} x {args.seq} tokens: try a smaller --batch or --seq, "
             "or --grad-ckpt", code=1)


def main(argv: list[str] | None = None) -> None:
    run(parse_args(argv))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
