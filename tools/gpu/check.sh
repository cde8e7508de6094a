#!/usr/bin/env bash
# The one-call GPU check, on the GPU machine (after tools/gpu/build.sh here, carrying .gpu/):
#
#   device run:  tools/gpu/check.sh          (carry [".gpu"], timeout_s 540)
#
# Every step runs under its own time limit inside an overall budget (CHECK_BUDGET_S, default
# 450 s), and appends to one log ($OUT/check.log) and one Markdown table ($OUT/check.md) as it
# ends, so a run cut short still returns what it did. DEVICE=cpu runs the same steps on the CPU
# (a dry run of the script itself on any machine with a CPU build in .gpu/).
#
# Steps: the kernel tests on the GPU; `generate` against the committed transformers fixtures
# (prefill logits and greedy tokens, dense f32 and bitsandbytes 4-bit models); bench-report's
# kernel, decode and train tables beside tools/anchor/run_hf.py (transformers + bitsandbytes)
# on the same GPU; `demo --quick`.
set -uo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
OUT="${OUT:-/tmp/gpu-check}"
mkdir -p "$OUT"
DEVICE="${DEVICE:-cuda}"
budget="${CHECK_BUDGET_S:-450}"
start=$(date +%s)
log="$OUT/check.log"
table="$OUT/check.md"
bin="/tmp/ro-gpu-bin"
: > "$log"
rm -f "$OUT/bench.md"
printf '| step | result | seconds | detail |\n| --- | --- | ---: | --- |\n' > "$table"

left() { echo $(( budget - ($(date +%s) - start) )); }

# step NAME LIMIT_S CMD...: runs CMD under min(LIMIT, time left), logs it, adds a table row
# with the last line CMD printed as detail.
step() {
  local name="$1" limit="$2"; shift 2
  local remaining; remaining=$(left)
  if [ "$remaining" -lt 10 ]; then
    printf '| %s | skipped (budget) | 0 | |\n' "$name" >> "$table"; return 0
  fi
  [ "$limit" -gt "$((remaining - 5))" ] && limit=$((remaining - 5))
  local t0; t0=$(date +%s.%N)
  echo "=== $name (limit ${limit}s)" >> "$log"
  # Through bash so that the step may be one of the functions below (exported to it).
  timeout -k 5 "$limit" bash -c '"$@"' step "$@" > "$OUT/.step" 2>&1
  local rc=$?
  cat "$OUT/.step" >> "$log"
  local secs; secs=$(python3 -c "import time; print(f'{time.time() - $t0:.1f}')")
  local result="ok"
  [ $rc -ne 0 ] && result="FAIL (exit $rc)"
  [ $rc -eq 124 ] && result="TIMEOUT (${limit}s)"
  local detail; detail=$(grep -v '^\s*$' "$OUT/.step" | tail -n 1 | tr '|' '/' | cut -c1-160)
  printf '| %s | %s | %s | %s |\n' "$name" "$result" "$secs" "$detail" >> "$table"
  echo "=== $name: $result in ${secs}s" >> "$log"
  return 0
}

unpack() {
  mkdir -p "$bin"
  python3 - "$root/.gpu/bin" "$bin" <<'PY'
import lzma, os, pathlib, shutil, sys
src, dst = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
for f in sorted(src.glob("*.xz")):
    out = dst / f.stem
    with lzma.open(f) as i, open(out, "wb") as o:
        shutil.copyfileobj(i, o)
    os.chmod(out, 0o755)
    print(out.name, out.stat().st_size // (1 << 20), "MiB")
PY
}

hf_python() { # bitsandbytes from the carried wheel, on PYTHONPATH
  if [ -d "$root/.gpu/whl" ] && [ ! -d /tmp/site/bitsandbytes ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site "$root"/.gpu/whl/*.whl
  fi
  PYTHONPATH=/tmp/site python3 "$@"
}

dump_logits() { # dump_logits MODEL DTYPE: our prefill logits of the fixture's ids_130, in
  # $OUT/.logits.safetensors (MODEL: a directory under tools/fixtures/llama)
  local ref="tools/fixtures/llama/$1/reference.safetensors" ids
  ids=$(python3 tools/gpu/compare.py ids "$ref" ids_130) || return 2
  "$bin/generate" --model "tools/fixtures/llama/$1" --device "$DEVICE" --dtype "$2" \
    --token-ids "$ids" --max-new-tokens 0 --dump-logits "$OUT/.logits.safetensors" > /dev/null
}

fidelity() { # fidelity MODEL TOL: f32 prefill logits and greedy tokens against transformers
  local model="tools/fixtures/llama/$1" tol="$2" ref="tools/fixtures/llama/$1/reference.safetensors"
  local greedy_ids
  greedy_ids=$(python3 tools/gpu/compare.py ids "$ref" greedy_prompt) || return 2
  dump_logits "$1" f32 || return 1
  python3 tools/gpu/compare.py logits "$ref" logits_130 "$OUT/.logits.safetensors" "$tol" || return 1
  "$bin/generate" --model "$model" --device "$DEVICE" --dtype f32 --token-ids "$greedy_ids" \
    --max-new-tokens 20 --greedy > "$OUT/.greedy.json" || return 1
  python3 tools/gpu/compare.py greedy "$ref" greedy_out "$OUT/.greedy.json"
}

bf16_distance() { # bf16_distance MODEL: our bf16 logits beside transformers' bf16 (CUDA only)
  local ref="tools/fixtures/llama/$1/reference.safetensors"
  dump_logits "$1" bf16 || return 1
  hf_python tools/gpu/compare.py bf16 "$ref" logits_130 "$OUT/.logits.safetensors" \
    "tools/fixtures/llama/$1" "$DEVICE"
}

stall_diagnosis() { # what cubecl compiles and tunes during one 1B-shape NF4 decode (its own log)
  local clog="$OUT/.cubecl.log"
  CUBECL_DEBUG_LOG="$clog" "$bin/generate" --random-init llama3.2-1b --load-in-4bit \
    --device "$DEVICE" --token-ids 1,2,3,4,5,6,7,8 --max-new-tokens 24 --greedy > /dev/null
  local rc=$?
  python3 - "$clog" <<'PY'
import re, sys
try:
    lines = open(sys.argv[1], errors="replace").read().splitlines()
except OSError:
    print("no cubecl log written"); sys.exit(0)
compiles = [l for l in lines if re.search(r"compil", l, re.I)]
tunes = [l for l in lines if re.search(r"autotun|tuning|fastest", l, re.I)]
for l in (compiles + tunes)[:60]:
    print("  " + l[:200])
print(f"cubecl log: {len(lines)} lines, {len(compiles)} compilation and {len(tunes)} autotune events")
PY
  rm -f "$clog"
  return $rc
}

bench() { # bench-report, its tables also kept for the summary; without hf.json (run_hf.py
  # failed or timed out) ours alone, against ANCHORS.md's H100 numbers
  local args=()
  while [ $# -gt 0 ]; do
    if [ "$1" = --hf ] && [ ! -f "$2" ]; then echo "(no $2: bench-report without --hf)"; shift 2; continue; fi
    args+=("$1"); shift
  done
  "$bin/bench-report" "${args[@]}" | tee -a "$OUT/bench.md"
  return "${PIPESTATUS[0]}"
}

timed_generate() { # the wall time of one whole `generate` run on a tiny model (start-up included)
  local t0; t0=$(date +%s.%N)
  "$bin/generate" --model tools/fixtures/llama/llama2 --device "$DEVICE" --token-ids 1,5,9,13 \
    --max-new-tokens 8 --greedy > /dev/null || return 1
  python3 -c "import time; print(f'generate, tiny model, 8 tokens: {time.time() - $t0:.2f} s wall')"
}

export -f unpack hf_python dump_logits fidelity bf16_distance stall_diagnosis bench timed_generate
export root OUT DEVICE bin
step "unpack binaries" 60 unpack
step "gpu" 15 bash -c "nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || echo 'no nvidia-smi'"
nvidia-smi dmon -s u -d 1 > "$OUT/dmon.log" 2>&1 &
dmon=$!
if [ "$DEVICE" = cuda ]; then
  step "kernel tests (cubecl on CUDA)" 120 "$bin/qlora-core-tests" --include-ignored quant::
else
  step "kernel tests (CPU paths)" 120 "$bin/qlora-core-tests" quant::
fi
step "generate: tiny model wall time" 60 timed_generate
step "stall diagnosis: cubecl compile/autotune events, 1B decode" 60 stall_diagnosis
step "generate vs transformers: llama3 f32" 60 fidelity llama3 1e-4
step "generate vs transformers: llama2 f32" 60 fidelity llama2 1e-4
step "generate vs transformers: llama3 NF4 (bnb)" 60 fidelity llama3_bnb4 1e-4
step "generate vs transformers: llama2 NF4 (bnb)" 60 fidelity llama2_bnb4 1e-4
if [ "$DEVICE" = cuda ]; then
  step "bf16 vs transformers bf16: llama3" 90 bf16_distance llama3
  step "bf16 vs transformers bf16: llama2" 90 bf16_distance llama2
fi
step "HF kernels + decode + train (run_hf.py)" 150 hf_python tools/anchor/run_hf.py \
  --device "$DEVICE" --rows kernels,decode_1b,train_1b --out "$OUT/hf.json"
step "bench-report: kernels, decode" 120 bench --device "$DEVICE" --hf "$OUT/hf.json" --decode
step "bench-report: QLoRA step, Llama-3.2-1B shape" 150 bench --device "$DEVICE" \
  --hf "$OUT/hf.json" --train --train-preset llama3.2-1b --train-configs nf4:gc \
  --train-seq-len 1024 --train-steps 2
step "demo --quick" 120 "$bin/demo" --quick --device "$DEVICE" --out "$OUT/.demo"
kill "$dmon" 2>/dev/null
cp "$OUT/.demo/report.md" "$OUT/demo-report.md" 2>/dev/null
rm -rf "$OUT/.demo" "$OUT/.logits.safetensors" "$OUT/.step"
echo "total $(( $(date +%s) - start )) s" >> "$table"
[ -f "$OUT/bench.md" ] && { printf '\n' >> "$table"; cat "$OUT/bench.md" >> "$table"; }
cat "$table"
