#!/usr/bin/env python3
"""Compares one `generate` run on the GPU with the committed transformers fixtures.

    compare.py logits  REFERENCE.safetensors KEY DUMP.safetensors TOL
        max |ours - transformers| over the prefill logits (`generate --dump-logits`), against
        the fixture's tensor KEY (e.g. logits_130); passes when <= TOL.
    compare.py greedy  REFERENCE.safetensors KEY GENERATE_OUTPUT.json
        the new token ids of `generate --greedy` equal the fixture's KEY (e.g. greedy_out).
    compare.py ids     REFERENCE.safetensors KEY
        prints the fixture's KEY as comma-separated ids (for `generate --token-ids`).
    compare.py bf16    REFERENCE.safetensors KEY DUMP.safetensors MODEL_DIR DEVICE
        our bf16 prefill logits (`generate --dtype bf16 --dump-logits`) against transformers'
        own bf16 logits of MODEL_DIR on DEVICE (cuda or cpu; needs torch and transformers),
        each also against the f32 reference KEY. Passes when ours are no further from
        transformers' bf16 than twice transformers' own bf16 error (plus 1e-3).

Prints one line `<what>: <number or ok> ...`; exit status 0 when the check passes, 1 when it
fails, 2 on bad input. Needs numpy and safetensors (torch's machine has both).
"""
import json
import sys

import numpy as np
from safetensors.numpy import load_file


def main(argv):
    if len(argv) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    mode, ref_path, key = argv[1], argv[2], argv[3]
    ref = load_file(ref_path)
    if key not in ref:
        print(f"{ref_path}: no tensor {key}", file=sys.stderr)
        return 2
    want = ref[key]
    if mode == "ids":
        print(",".join(str(int(i)) for i in want.reshape(-1)))
        return 0
    if mode == "logits":
        got = load_file(argv[4])["logits"].astype(np.float64)
        tol = float(argv[5])
        if got.shape != want.shape:
            print(f"logits {key}: shape {got.shape}, want {want.shape}")
            return 1
        diff = float(np.max(np.abs(got - want.astype(np.float64))))
        ok = np.isfinite(diff) and diff <= tol
        print(f"logits {key}: max abs diff {diff:.3g} (tolerance {tol:g}) {'ok' if ok else 'FAIL'}")
        return 0 if ok else 1
    if mode == "bf16":
        return bf16(ref, key, argv[4], argv[5], argv[6])
    if mode == "greedy":
        with open(argv[4]) as f:
            line = [l for l in f if l.strip().startswith("{")][-1]
        got = json.loads(line)["token_ids"]
        want = [int(i) for i in want.reshape(-1)]
        n = sum(1 for a, b in zip(got, want) if a == b)
        ok = got == want
        print(f"greedy {key}: {n}/{len(want)} tokens equal {'ok' if ok else 'FAIL'}"
              + ("" if ok else f" (ours {got}, transformers {want})"))
        return 0 if ok else 1
    print(f"unknown mode {mode}", file=sys.stderr)
    return 2


def bf16(ref, key, dump, model_dir, device):
    """Distances between our bf16, transformers' bf16 and the f32 reference logits of the
    fixture's ids for KEY (`logits_N` -> `ids_N`)."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16).to(device)
    model.eval()
    ids = torch.from_numpy(ref[key.replace("logits", "ids")]).to(device)
    with torch.no_grad():
        hf = model(input_ids=ids).logits.float().cpu().numpy().astype(np.float64)
    ours = load_file(dump)["logits"].astype(np.float64)
    f32 = ref[key].astype(np.float64)

    def dist(a, b):
        return float(np.max(np.abs(a - b)))

    ours_hf, ours_f32, hf_f32 = dist(ours, hf), dist(ours, f32), dist(hf, f32)
    ok = np.isfinite(ours_hf) and ours_hf <= 2 * hf_f32 + 1e-3
    print(f"bf16 {key}: ours vs transformers bf16 {ours_hf:.3g}; vs f32: ours {ours_f32:.3g}, "
          f"transformers {hf_f32:.3g} {'ok' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
