#!/usr/bin/env bash
# Set everything up and open the chat over the bundled papers (offline), building the index first if needed.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/rag ui "$@"
