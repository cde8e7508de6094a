#!/usr/bin/env bash
# Builds what tools/gpu/check.sh runs on the GPU machine, here (no GPU or CUDA toolkit needed):
# the CUDA builds of the example programs and bench-report, and qlora-core's kernel test
# binary; strips and xz-compresses them into .gpu/ (git-ignored through git's info/exclude),
# with bitsandbytes' wheel cut down to its CUDA 13 library for tools/anchor/run_hf.py.
#
#   tools/gpu/build.sh            # cold: ~25 min on 2 cores; warm: a few minutes
#
# Then, with the `device` tool: run `tools/gpu/check.sh` with carry [".gpu"].
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
out="$root/.gpu"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ro-gpu-target}"
export CARGO_TERM_COLOR=never
exclude="$(git rev-parse --git-path info/exclude)"   # also right in a git worktree
mkdir -p "$(dirname "$exclude")"
grep -qxF '/.gpu/' "$exclude" 2>/dev/null || echo '/.gpu/' >> "$exclude"
rm -rf "$out" && mkdir -p "$out/bin"

echo "== build: example programs and bench-report with --features cuda"
cargo build --release --features cuda -p ro-examples -p ro-benches --bins

echo "== build: qlora-core kernel tests with --features cuda"
test_bin="$(cargo test --release -p qlora-core --features cuda --lib --no-run --message-format=json 2>/dev/null \
  | python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["kind"] == ["lib"]:
        print(m["executable"])')"
[ -x "$test_bin" ] || { echo "kernel test binary not found" >&2; exit 1; }

pack() { # pack SRC NAME: strip and xz into .gpu/bin/NAME.xz
  strip -o "$out/bin/$2" "$1"
  xz -T2 -9 -f "$out/bin/$2"
}
for b in generate finetune merge quantize demo; do pack "$CARGO_TARGET_DIR/release/$b" "$b"; done
pack "$CARGO_TARGET_DIR/release/bench-report" bench-report
pack "$test_bin" qlora-core-tests

echo "== bitsandbytes 0.50.2 (CUDA 13 library only) for run_hf.py"
python3 - "$out" <<'PY'
import io, subprocess, sys, tempfile, zipfile, pathlib
out = pathlib.Path(sys.argv[1]) / "whl"
out.mkdir(parents=True, exist_ok=True)
with tempfile.TemporaryDirectory() as tmp:
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                    "--python-version", "3.12", "--implementation", "cp",
                    "--platform", "manylinux_2_24_x86_64", "--platform", "manylinux_2_17_x86_64",
                    "-d", tmp, "bitsandbytes==0.50.2"], check=True)
    src = next(pathlib.Path(tmp).glob("bitsandbytes-*.whl"))
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(out / src.name, "w", zipfile.ZIP_DEFLATED) as zout:
        for item in zin.infolist():
            name = item.filename
            if name.endswith(".so") and "cuda130" not in name:
                continue  # other CUDA versions and the CPU library: not needed there
            zout.writestr(item, zin.read(name))
print("wheel:", out)
PY

bytes=$(find "$out" -type f -printf '%s\n' | awk '{s += $1} END {print s}')
echo "$out: $(( bytes / 1024 )) KiB in files"
if [ "$bytes" -ge $(( 40 << 20 )) ]; then echo "warning: .gpu holds $bytes bytes (limit 40 MiB)" >&2; fi
echo "== done: carry .gpu and run tools/gpu/check.sh on the GPU machine"
