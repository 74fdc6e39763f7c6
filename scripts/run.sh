#!/usr/bin/env bash
# Set everything up, build the index of the bundled papers (offline) and answer a sample search.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
.venv/bin/rag ingest
.venv/bin/rag search "${1:-How narrow can a ReLU network be and still approximate any function?}"
