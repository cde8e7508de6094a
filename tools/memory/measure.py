#!/usr/bin/env python3
"""Peak memory of `finetune` runs against `estimate_training_memory`, over a grid of model
sizes, sequence lengths, batch sizes, and gradient checkpointing on and off.

Each run is its own child process; its peak resident set (VmHWM: anonymous memory plus the
pages of the memory-mapped checkpoint, `ru_maxrss` from wait4) is compared with the host
estimate that finetune logs (`memory estimate: ...`, RUST_LOG=info). Random-weight f32
checkpoints are written with transformers (any LLaMA checkpoint of the same shapes and
dtype maps the same bytes) into a cache folder; data are pre-tokenized sequences of exactly
the grid's length.

Each configuration runs `--repeat` times (default 3): the resident heap's holes depend on
the order in which threads happen to allocate, so the peak varies by a few percent from run
to run; "measured" is the largest, "runs" all of them.

Usage: python3 tools/memory/measure.py [--bin TARGET/release/finetune] [--out tools/memory/grid.json] [--repeat 3]
Pinned: torch==2.15.0 transformers==5.23.0 (only to write the random checkpoints).
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CACHE = os.path.join(os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "ro-qlora", "memory")

# name: hidden, intermediate, layers, heads, kv heads, vocab, tied
MODELS = {
    "h256-l2": (256, 688, 2, 4, 2, 8000, True),
    "h512-l4": (512, 1376, 4, 8, 4, 16000, True),
    "h768-l6": (768, 2048, 6, 12, 4, 32000, False),
    "h1024-l8": (1024, 2816, 8, 16, 8, 32000, True),
}
# model, batch, seq, checkpointing: each model short (loading dominates) and longer (training
# dominates), with and without checkpointing; the smallest model also at 4 x 512.
GRID = [(m, b, s, gc) for m in MODELS for (b, s) in [(1, 64), (2, 256)] for gc in (False, True)]
GRID += [("h256-l2", 4, 512, False), ("h256-l2", 4, 512, True)]


def checkpoint(name):
    """The cached checkpoint of `name`, written by a child process: the measuring process must
    stay small, since a child's ru_maxrss is the larger of its own peak and the RSS of the
    process image it replaced at exec (the forked copy of this one)."""
    d = os.path.join(CACHE, name)
    if not os.path.exists(os.path.join(d, "model.safetensors")):
        subprocess.run([sys.executable, __file__, "--make-checkpoint", name], check=True)
    return d


def make_checkpoint(name):
    d = os.path.join(CACHE, name)
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM
    h, i, l, nh, nkv, v, tied = MODELS[name]
    cfg = LlamaConfig(hidden_size=h, intermediate_size=i, num_hidden_layers=l, num_attention_heads=nh,
                      num_key_value_heads=nkv, vocab_size=v, tie_word_embeddings=tied,
                      max_position_embeddings=4096, bos_token_id=1, eos_token_id=2, pad_token_id=0)
    torch.manual_seed(0)
    LlamaForCausalLM(cfg).to(torch.float32).save_pretrained(d)


def data(path, vocab, batch, seq, steps):
    import random
    rng = random.Random(0)
    with open(path, "w") as f:
        for _ in range(batch * steps):
            ids = [rng.randrange(3, vocab) for _ in range(seq)]
            f.write(json.dumps({"input_ids": ids, "labels": ids}) + "\n")


def run(binary, name, batch, seq, gc, steps=3):
    model = checkpoint(name)
    with tempfile.TemporaryDirectory() as tmp:
        d = os.path.join(tmp, "train.jsonl")
        data(d, MODELS[name][5], batch, seq, steps)
        cmd = [binary, "--model", model, "--data", d, "--task", "tokens", "--output",
               os.path.join(tmp, "out"), "--steps", str(steps), "--batch-size", str(batch),
               "--lora-r", "16", "--optimizer", "paged-adamw", "--no-shuffle", "--quiet",
               "--max-seq-len", str(seq)] + (["--gradient-checkpointing"] if gc else [])
        t = time.time()
        p = subprocess.Popen(cmd, stderr=subprocess.PIPE, env={**os.environ, "RUST_LOG": "info"})
        err = p.stderr.read().decode()
        _, status, usage = os.wait4(p.pid, 0)
        if status != 0:
            raise SystemExit(f"{cmd}: {err}")
        m = re.search(r"memory estimate \(bytes\): (\{.*\})", err)
        est = json.loads(m.group(1)) if m else {"total": 0}
        return {"model": name, "batch": batch, "seq": seq, "checkpointing": gc,
                "measured": usage.ru_maxrss * 1024, "estimate": est, "seconds": round(time.time() - t, 1)}


def main():
    ap = argparse.ArgumentParser()
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    ap.add_argument("--bin", default=os.path.join(target, "release", "finetune"))
    ap.add_argument("--out", default=os.path.join(ROOT, "tools", "memory", "grid.json"))
    ap.add_argument("--only", help="a model name of the grid")
    ap.add_argument("--repeat", type=int, default=3, help="runs per configuration")
    ap.add_argument("--make-checkpoint", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.make_checkpoint:
        return make_checkpoint(args.make_checkpoint)
    rows = []
    for m, b, s, gc in GRID:
        if args.only and m != args.only:
            continue
        runs = [run(args.bin, m, b, s, gc) for _ in range(max(args.repeat, 1))]
        r = max(runs, key=lambda x: x["measured"])
        r["runs"] = [x["measured"] for x in runs]
        host = r["estimate"]["total"]
        r["ratio"] = round(host / r["measured"], 3)
        rows.append(r)
        low = min(r["runs"]) / 2**20
        print(f"{m:9} b{b} s{s:4} gc={int(gc)}  measured {low:7.1f}-{r['measured']/2**20:7.1f} MiB  "
              f"estimate {host/2**20:7.1f} MiB  ratio {r['ratio']:.3f}  ({r['seconds']} s)", flush=True)
    with open(args.out, "w") as f:
        json.dump(rows, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
