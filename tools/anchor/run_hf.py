#!/usr/bin/env python3
"""The HF side of `bench-report`: the same shapes with transformers + peft + bitsandbytes.

Writes JSON that `bench-report --hf FILE` reads:
    {"meta": {...}, "rows": {"dequant_plain": {"value": 0.106, "unit": "ms", "memory_gib": null}, ...}}
Row keys and units are those of bench-report (and of ../shared/ANCHORS.md):

    dequant_plain / dequant_dq   NF4 dequantize 4096x14336 -> bf16 (ms)
    quant_plain / quant_dq       NF4 quantize 4096x14336 bf16 (ms)
    matmul4_2048                 4-bit matmul, 2048 tokens x 4096 -> 14336 (ms)
    gemv_plain / gemv_dq         4-bit GEMV, 1 token, 4096 -> 14336 (us)
    decode_1b / decode_8b        greedy decode batch 1, random weights, 4-bit base (tok/s)
    prefill_8b                   prefill 512 tokens, 4-bit base (ms)
    train_1b / train_8b          QLoRA r16 all linear, gradient checkpointing, paged AdamW
                                 32-bit, batch 2 x 1024 (tok/s, peak GiB)

Usage on the GPU machine (bitsandbytes/peft wheels carried, see requirements.txt):
    python3 tools/anchor/run_hf.py --out hf.json                      # kernels only
    python3 tools/anchor/run_hf.py --rows kernels,decode_1b,train_1b --out hf.json
    python3 tools/anchor/run_hf.py --device cpu --iters 2 --out /tmp/hf_cpu.json  # smoke test

Models are randomly initialised from the real Hugging Face configs (the same JSON as
llama-model's presets), then every nn.Linear except lm_head is replaced by a bitsandbytes
Linear4bit (NF4, double quant, bf16 compute), as `load_in_4bit` would load it.
"""

import argparse
import datetime
import json
import platform
import statistics
import time

import torch

ROWS, COLS = 4096, 14336

CONFIGS = {
    "llama3-8b": dict(vocab_size=128256, hidden_size=4096, intermediate_size=14336,
                      num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8,
                      max_position_embeddings=8192, rms_norm_eps=1e-5, rope_theta=500000.0,
                      tie_word_embeddings=False, bos_token_id=128000, eos_token_id=128001),
    "llama3.2-1b": dict(vocab_size=128256, hidden_size=2048, intermediate_size=8192,
                        num_hidden_layers=16, num_attention_heads=32, num_key_value_heads=8,
                        head_dim=64, max_position_embeddings=131072, rms_norm_eps=1e-5,
                        rope_theta=500000.0, tie_word_embeddings=True, bos_token_id=128000,
                        eos_token_id=128001,
                        rope_scaling=dict(factor=32.0, high_freq_factor=4.0, low_freq_factor=1.0,
                                          original_max_position_embeddings=8192,
                                          rope_type="llama3")),
}


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_time(fn, device, iters):
    fn()
    sync(device)
    times = []
    for _ in range(iters):
        t = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def peak_gib(device):
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    return None


def kernels(device, iters):
    import bitsandbytes.functional as F

    g = torch.Generator(device="cpu").manual_seed(0)
    w = (torch.randn(ROWS, COLS, generator=g) * 0.02).to(torch.bfloat16).to(device)
    rows = {}
    for dq in (False, True):
        tag = "dq" if dq else "plain"
        t = median_time(lambda: F.quantize_4bit(w, blocksize=64, compress_statistics=dq,
                                                quant_type="nf4"), device, iters)
        rows[f"quant_{tag}"] = dict(value=t * 1e3, unit="ms")
        packed, state = F.quantize_4bit(w, blocksize=64, compress_statistics=dq, quant_type="nf4")
        t = median_time(lambda: F.dequantize_4bit(packed, state), device, iters)
        rows[f"dequant_{tag}"] = dict(value=t * 1e3, unit="ms")
        # GEMV: weight [out=14336, in=4096], one token.
        wt = (torch.randn(COLS, ROWS, generator=g) * 0.02).to(torch.bfloat16).to(device)
        pt, st = F.quantize_4bit(wt, blocksize=64, compress_statistics=dq, quant_type="nf4")
        import bitsandbytes as bnb
        x1 = torch.randn(1, ROWS, dtype=torch.bfloat16, device=device)
        t = median_time(lambda: bnb.matmul_4bit(x1, pt.t(), quant_state=st), device, iters)
        rows[f"gemv_{tag}"] = dict(value=t * 1e6, unit="us")
        if not dq and device.type == "cuda":
            x = torch.randn(2048, ROWS, dtype=torch.bfloat16, device=device)
            t = median_time(lambda: bnb.matmul_4bit(x, pt.t(), quant_state=st), device, iters)
            rows["matmul4_2048"] = dict(value=t * 1e3, unit="ms")
    return rows


def quantized_model(name, device):
    """A random model of `name`'s shape with bnb NF4 (double quant) linears, bf16 compute."""
    import bitsandbytes as bnb
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(**CONFIGS[name], torch_dtype="bfloat16")
    model = LlamaForCausalLM(config).to(torch.bfloat16)

    def replace(module):
        for child_name, child in list(module.named_children()):
            if isinstance(child, torch.nn.Linear) and child_name != "lm_head":
                q = bnb.nn.Linear4bit(child.in_features, child.out_features,
                                      bias=child.bias is not None,
                                      compute_dtype=torch.bfloat16, compress_statistics=True,
                                      quant_type="nf4")
                q.weight = bnb.nn.Params4bit(child.weight.data, requires_grad=False,
                                             compress_statistics=True, quant_type="nf4")
                setattr(module, child_name, q)
            else:
                replace(child)

    replace(model)
    return model.to(device)  # Params4bit quantizes on the move to the GPU


def decode(name, device, tokens):
    model = quantized_model(name, device).eval()
    ids = torch.tensor([[1000 + 7 * i for i in range(16)]], device=device)
    with torch.no_grad():
        model.generate(ids, max_new_tokens=2, do_sample=False)
        sync(device)
        t = time.perf_counter()
        out = model.generate(ids, max_new_tokens=tokens, min_new_tokens=tokens, do_sample=False)
        sync(device)
        dt = time.perf_counter() - t
    n = out.shape[1] - ids.shape[1]
    rows = {f"decode_{name_key(name)}": dict(value=n / dt, unit="tok/s", memory_gib=peak_gib(device))}
    if name == "llama3-8b":
        x = torch.randint(0, 128000, (1, 512), device=device)
        with torch.no_grad():
            t = median_time(lambda: model(x), device, 3)
        rows["prefill_8b"] = dict(value=t * 1e3, unit="ms")
    del model
    return rows


def train(name, device, steps):
    import bitsandbytes as bnb
    from peft import LoraConfig, get_peft_model

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    model = quantized_model(name, device)
    model.gradient_checkpointing_enable()
    model.enable_input_require_grads()
    lora = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, task_type="CAUSAL_LM",
                      target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
                                      "up_proj", "down_proj"])
    model = get_peft_model(model, lora)
    opt = bnb.optim.PagedAdamW32bit([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    x = torch.randint(0, 128000, (2, 1024), device=device)

    def step():
        with torch.autocast(device.type, dtype=torch.bfloat16):
            loss = model(input_ids=x, labels=x).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    step()
    sync(device)
    t = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    dt = (time.perf_counter() - t) / steps
    row = dict(value=2 * 1024 / dt, unit="tok/s", memory_gib=peak_gib(device))
    del model, opt
    return {f"train_{name_key(name)}": row}


def name_key(name):
    return {"llama3-8b": "8b", "llama3.2-1b": "1b"}[name]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", default="kernels",
                    help="comma list of: kernels, decode_1b, decode_8b, train_1b, train_8b")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--decode-tokens", type=int, default=64)
    ap.add_argument("--train-steps", type=int, default=5)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    device = torch.device(args.device)
    import bitsandbytes, peft, transformers

    rows = {}
    for what in args.rows.split(","):
        if what == "kernels":
            rows.update(kernels(device, args.iters))
        elif what in ("decode_1b", "decode_8b"):
            rows.update(decode("llama3.2-1b" if what == "decode_1b" else "llama3-8b", device,
                               args.decode_tokens))
        elif what in ("train_1b", "train_8b"):
            rows.update(train("llama3.2-1b" if what == "train_1b" else "llama3-8b", device,
                              args.train_steps))
        else:
            ap.error(f"unknown row group {what!r}")
        if device.type == "cuda":
            torch.cuda.empty_cache()
    meta = dict(
        device=torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        torch=torch.__version__, transformers=transformers.__version__, peft=peft.__version__,
        bitsandbytes=bitsandbytes.__version__, cuda=torch.version.cuda,
    )
    for r in rows.values():
        r.setdefault("memory_gib", None)
    with open(args.out, "w") as f:
        json.dump(dict(meta=meta, rows=rows), f, indent=1)
    print(json.dumps(dict(meta=meta, rows=rows), indent=1))


if __name__ == "__main__":
    main()
