#!/usr/bin/env python3
"""Compares one `generate` run on the GPU with the committed transformers fixtures.

    compare.py logits  REFERENCE.safetensors KEY DUMP.safetensors TOL
        max |ours - transformers| over the prefill logits (`generate --dump-logits`), against
        the fixture's tensor KEY (e.g. logits_130); passes when <= TOL.
    compare.py greedy  REFERENCE.safetensors KEY GENERATE_OUTPUT.json
        the new token ids of `generate --greedy` equal the fixture's KEY (e.g. greedy_out).
    compare.py ids     REFERENCE.safetensors KEY
        prints the fixture's KEY as comma-separated ids (for `generate --token-ids`).

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


if __name__ == "__main__":
    sys.exit(main(sys.argv))
