#!/usr/bin/env bash
# A non-editable install works: build the wheel, install it (no extras) into a fresh virtualenv, and run
# `rag eval --limit 3` from outside the checkout, so only the installed package (with its eval sets) is seen.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
base=$(.venv/bin/python -c 'import sys; print(sys._base_executable)')
.venv/bin/python -m pip wheel --quiet --disable-pip-version-check --no-deps -w "$work/dist" .
"$base" -m venv "$work/venv"
"$work/venv/bin/python" -m pip install --quiet --disable-pip-version-check "$work"/dist/*.whl
cd "$work"
"$work/venv/bin/python" -c 'import importlib.util as u; assert u.find_spec("ui") is None and u.find_spec("eval") is None, "generic top-level packages installed"'
RAG_INDEX_DIR="$work/index" "$work/venv/bin/rag" eval --split dev --limit 3 --out "$work/eval"
test -s "$work/eval/results.json" && test -s "$work/eval/report.md"
echo "wheel check: $(ls "$work"/dist) installs and runs \`rag eval\` from outside the checkout"
