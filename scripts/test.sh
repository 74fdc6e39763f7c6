#!/usr/bin/env bash
# Set everything up and run the whole test suite, with lint and type checks first.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh dev,local,qwen
# The browser tests drive Debian's Chromium (Playwright cannot download browsers here).
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing chromium for the browser tests…"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "warning: chromium is not installed and cannot be installed here; the browser tests will skip" >&2
  fi
fi
.venv/bin/ruff check rag ui eval tests bench
.venv/bin/mypy
# The fast layer first (what `pytest -m "not slow"` runs in the inner loop), then servers, browsers, the CLI and
# llama.cpp: together, the whole suite, each test once.
.venv/bin/python -m pytest -m "not slow" "$@"
# A wheel (not the editable checkout) installs into a fresh virtualenv and runs `rag eval` (about two minutes).
scripts/wheel_check.sh
.venv/bin/python -m pytest -m slow "$@"
# Evaluation gates (thresholds in eval/thresholds.toml), on an index of their own.
eval_dir=$(mktemp -d)
# The gate judges the first run (hybrid retrieval, test split); dev and BM25-only are reported beside it.
RAG_INDEX_DIR="$eval_dir/index" .venv/bin/rag eval --split test --split dev --retriever hybrid --retriever bm25 \
  --out "$eval_dir/offline" --gate offline
# The chat-model path with a model that can answer: Qwen2.5-1.5B on 10 items (about five minutes on 2 cores).
RAG_INDEX_DIR="$eval_dir/index" .venv/bin/rag eval --local --model qwen2.5-1.5b --split dev --limit 10 \
  --out "$eval_dir/local" --gate local
rm -rf "$eval_dir"
