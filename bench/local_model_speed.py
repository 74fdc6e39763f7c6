"""Tokens per second of the installed llama.cpp build with a local model (prompt and generation).

Runs in-process through llama_cpp (the same library the server uses), with the server's thread count.
Median of --runs repetitions after one warm-up; prints llama.cpp's CPU features so builds can be compared.
Usage: python bench/local_model_speed.py [--model smollm2|qwen2.5-1.5b|FILE.gguf] [--runs 5] [--prompt-tokens 512]
       [--gen-tokens 128]
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file (python bench/x.py): make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import statistics
import time

import llama_cpp

from rag.config import model_cache_dir
from rag.local.catalog import resolve
from rag.local.model import default_threads

parser = argparse.ArgumentParser()
parser.add_argument("--runs", type=int, default=5)
parser.add_argument("--prompt-tokens", type=int, default=512)
parser.add_argument("--gen-tokens", type=int, default=128)
parser.add_argument("--model", default=None, help="a model name of `rag local-model --list`, or a .gguf file")
args = parser.parse_args()

model, name = resolve(args.model, model_cache_dir())
llm = llama_cpp.Llama(model_path=str(model), n_ctx=2048, n_threads=default_threads(), verbose=False)
print(llama_cpp.llama_print_system_info().decode(errors="replace").strip())
words = ("attention transformer lottery ticket network pruning scaling law emergent ability " * 200).split()
prompt_ids = llm.tokenize(" ".join(words).encode())[: args.prompt_tokens]


def prompt_speed() -> float:
    llm.reset()
    start = time.perf_counter()
    llm.eval(prompt_ids)
    return len(prompt_ids) / (time.perf_counter() - start)


def generation_speed() -> float:
    llm.reset()
    llm.eval(prompt_ids[:16])
    start = time.perf_counter()
    for _ in range(args.gen_tokens):
        token = llm.sample(temp=0.0)
        llm.eval([token])
    return args.gen_tokens / (time.perf_counter() - start)


prompt_speed(), generation_speed()  # warm-up
prompts = [prompt_speed() for _ in range(args.runs)]
gens = [generation_speed() for _ in range(args.runs)]
print(f"{name}: threads {default_threads()}, median of {args.runs} runs:")
print(f"  prompt processing: {statistics.median(prompts):.0f} tokens/s ({len(prompt_ids)} tokens)")
print(f"  generation:        {statistics.median(gens):.1f} tokens/s ({args.gen_tokens} tokens)")
