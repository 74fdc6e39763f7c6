#!/usr/bin/env bash
# Set everything up and run the whole test suite, with lint and type checks first.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh dev,local
.venv/bin/ruff check rag ui eval tests bench
.venv/bin/mypy
.venv/bin/python -m pytest "$@"
