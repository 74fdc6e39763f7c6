"""Load on the chat: N concurrent gradio_client users × M questions each against `rag ui` (offline default).

Starts `rag ui` on a fresh bundled index on a free loopback port; every client asks its questions in turn and
waits for each full answer. Prints answered/failed, latency p50/p95 and the server's resident memory.
Usage: python bench/ui_load.py [--clients 20] [--questions 10]
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file (python bench/x.py): make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import os
import subprocess
import threading
import time

import rag
from bench.common import percentiles, temp_settings
from eval.datasets import retrieval_questions
from tests.helpers import free_port, http_ok, stop, wait_until

QUESTIONS = retrieval_questions()

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--clients", type=int, default=20)
parser.add_argument("--questions", type=int, default=10)
args = parser.parse_args()


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


settings = temp_settings("bench-load-")
rag.ingest(settings=settings, progress=False)
port = free_port()
url = f"http://127.0.0.1:{port}/"
proc = subprocess.Popen(
    [sys.executable, "-m", "rag.cli", "ui", "--port", str(port)],
    env={**os.environ, "RAG_INDEX_DIR": str(settings.index_dir)},
    stdout=subprocess.DEVNULL,
    stderr=subprocess.DEVNULL,
)
latencies: list[float] = []
failures: list[str] = []
peak = [0.0]
lock = threading.Lock()


def user(n: int) -> None:
    from gradio_client import Client

    client = Client(url, verbose=False)
    for i in range(args.questions):
        question = QUESTIONS[(n + i) % len(QUESTIONS)][0]
        start = time.perf_counter()
        try:
            _, chat = client.predict(question, [], 5, api_name="/answer")
            ok = "answered by" in str(chat[-1]["content"]) or "answered by" in str(chat)
        except Exception as exc:  # a failed request is what this benchmark counts
            ok, chat = False, str(exc)
        with lock:
            (latencies.append(time.perf_counter() - start) if ok else failures.append(str(chat)[:200]))


def watch_memory(stop_event: threading.Event) -> None:
    while not stop_event.is_set():
        peak[0] = max(peak[0], rss_mb(proc.pid))
        time.sleep(0.5)


try:
    wait_until(lambda: http_ok(url), timeout=120, proc=proc)  # type: ignore[arg-type]
    done = threading.Event()
    threading.Thread(target=watch_memory, args=(done,), daemon=True).start()
    start = time.perf_counter()
    threads = [threading.Thread(target=user, args=(n,)) for n in range(args.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    done.set()
    settled = rss_mb(proc.pid)
finally:
    stop(proc)  # type: ignore[arg-type]
total = args.clients * args.questions
p50, p95 = percentiles(latencies) if latencies else (0.0, 0.0)
print(f"{args.clients} clients × {args.questions} questions: {len(latencies)}/{total} answered, {len(failures)} failed")
print(
    f"latency p50 {p50 / 1000:.2f} s, p95 {p95 / 1000:.2f} s; wall {wall:.1f} s, {len(latencies) / wall:.1f} answers/s"
)
print(f"server resident memory: peak {peak[0]:.0f} MB, after the run {settled:.0f} MB")
for failure in failures[:3]:
    print("failure:", failure)
