#!/usr/bin/env python3
"""Times Google's rouge-score 0.1.2 on the ROUGE benchmark corpus and writes that corpus.

The corpus: 20,000 deterministic (reference, candidate) pairs of clinical letter-like,
multi-line texts of ~200-400 words (the letter generator of
tools/fixtures/rouge/gen_rouge.py, seed 7). It is written to /tmp/ro_rouge_corpus.jsonl
(not committed), which `benches/benches/rouge.rs` reads, so both sides score the same pairs.

rouge-score takes ~20-40 ms per pair, so by default only the first --time-pairs pairs are
timed and the per-pair time is reported. Run on one core, next to the Rust bench:

    taskset -c 0 python3 tools/bench/rouge_score_timing.py --time-pairs 500
    RAYON_NUM_THREADS=1 taskset -c 0 cargo bench -p ro-benches --bench rouge

Pinned: rouge-score==0.1.2, nltk==3.10.4 (tools/fixtures/rouge/requirements.txt).
"""

import argparse
import json
import os
import random
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "rouge"))
from gen_rouge import letter, perturb  # noqa: E402
from rouge_score import rouge_scorer  # noqa: E402

TYPES = ["rouge1", "rouge2", "rougeL", "rougeLsum"]


def corpus(n):
    rng = random.Random(7)
    out = []
    for _ in range(n):
        ref = letter(rng, rng.randrange(14, 28))
        out.append((ref, perturb(rng, ref)))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=20000, help="corpus size (default 20000)")
    ap.add_argument("--time-pairs", type=int, default=500, help="pairs to time rouge-score on")
    ap.add_argument("--out", default="/tmp/ro_rouge_corpus.jsonl", help="corpus file to write")
    args = ap.parse_args()
    pairs = corpus(args.pairs)
    with open(args.out, "w", encoding="utf-8") as f:
        for r, c in pairs:
            f.write(json.dumps({"reference": r, "candidate": c}) + "\n")
    words = sum(len(r.split()) for r, _ in pairs) / len(pairs)
    print(f"corpus: {len(pairs)} pairs, {words:.0f} reference words on average -> {args.out}")
    timed = pairs[: args.time_pairs]
    for stem in (True, False):
        scorer = rouge_scorer.RougeScorer(TYPES, use_stemmer=stem)
        t0 = time.perf_counter()
        for r, c in timed:
            scorer.score(r, c)
        dt = time.perf_counter() - t0
        per = dt / len(timed)
        print(f"rouge-score stem={stem}: {per * 1e3:.3f} ms/pair over {len(timed)} pairs "
              f"-> {per * len(pairs):.1f} s for {len(pairs)} pairs")


if __name__ == "__main__":
    main()
