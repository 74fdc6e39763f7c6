#!/usr/bin/env bash
# Create or reuse .venv in the repository root and install the project into it.
# Usage: scripts/setup.sh [EXTRAS]   e.g. scripts/setup.sh dev,local
#
# With the `local` extra, llama-cpp-python is compiled from source. On x86-64 it is built portably
# (AVX2/FMA/F16C baseline, no -march=native), so a wheel built here runs on any AVX2 CPU, and a cached
# wheel cannot carry another machine's instructions. Pass your own CMAKE_ARGS for a GPU or Apple build,
# e.g. CMAKE_ARGS="-DGGML_CUDA=on" scripts/setup.sh local. After installing, a one-token generation runs
# in a subprocess; if it crashes, llama-cpp-python is rebuilt portably without pip's cache.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-$(command -v python3.11 || command -v python3)}
PORTABLE_CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
  .venv/bin/python -m pip install --quiet --upgrade pip
fi
extras=${1:-}
target="."
[ -n "$extras" ] && target=".[$extras]"
with_local=false
[[ ",$extras," == *",local,"* ]] && with_local=true
if $with_local; then
  export CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc 2>/dev/null || echo 2)}
  if [ -z "${CMAKE_ARGS:-}" ] && [ "$(uname -m)" = x86_64 ]; then
    export CMAKE_ARGS="$PORTABLE_CMAKE_ARGS"
  fi
  if ! .venv/bin/python -c 'import llama_cpp' 2>/dev/null; then
    echo "setup: installing llama-cpp-python (CMAKE_ARGS=${CMAKE_ARGS:-default}); compiling it takes several minutes, once"
  fi
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e "$target"
if $with_local; then
  if ! check=$(.venv/bin/rag local-model --check 2>&1); then
    echo "setup: llama-cpp-python does not run on this CPU ($(echo "$check" | head -1 | sed 's/^rag: error: llama.cpp //')); rebuilding it portably, without pip's cache (a few minutes)…"
    version=$(.venv/bin/python -c 'import importlib.metadata as m; print(m.version("llama-cpp-python"))')
    .venv/bin/python -m pip cache remove 'llama_cpp_python*' >/dev/null 2>&1 || true  # the stale wheel
    CMAKE_ARGS="$PORTABLE_CMAKE_ARGS" .venv/bin/python -m pip install --quiet --disable-pip-version-check \
      --no-cache-dir --force-reinstall --no-deps "llama-cpp-python==$version"
    if ! .venv/bin/rag local-model --check; then
      echo "setup: llama-cpp-python still fails after a portable rebuild; see the output above" >&2
      exit 1
    fi
  fi
fi
