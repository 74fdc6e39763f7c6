"""Load on the chat: N concurrent users × M questions each against `rag ui` (offline default).

Starts `rag ui` on a fresh bundled index on a free loopback port; every user asks its questions in turn and
waits for each full answer. Prints answered/failed, latency p50/p95, and the CPU and resident memory of the
server. `--client gradio` uses gradio_client (one thread per user: on 2 cores the clients take most of the CPU);
`--client http` speaks Gradio's HTTP API directly with httpx (light), to show what the server itself sustains.
With the http client the server's memory is sampled after every answer: it should stay flat after the first
`--warmup` answers, since the server keeps at most RAG_UI_SESSIONS sessions (200) and a bounded conversation in
each. `--sessions S` makes the answers come from S browser sessions, each keeping its conversation on the server
(`--sessions 200 --clients 20 --questions 100` is 2,000 answers from 200 sessions); without it, every answer
opens a new session, as an API client does.
Usage: python bench/ui_load.py [--clients 20] [--questions 10] [--client gradio|http] [--sessions S]
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

import httpx
from rag.eval.datasets import retrieval_questions

import rag
from bench.common import percentiles, temp_settings
from tests.helpers import free_port, http_ok, stop, wait_until

QUESTIONS = retrieval_questions()

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--clients", type=int, default=20)
parser.add_argument("--questions", type=int, default=10)
parser.add_argument("--client", choices=["gradio", "http"], default="gradio")
parser.add_argument("--sessions", type=int, default=0, help="answers come from this many sessions (else one each)")
parser.add_argument("--warmup", type=int, default=200, help="answers before memory is taken as warmed up")
args = parser.parse_args()
if args.sessions:
    args.client = "http"


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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


rss_after: list[float] = []  # server memory after each answer, in answer order


def ask_http(client: httpx.Client, question: str, session: str | None = None) -> str:
    """Gradio's HTTP API: POST the call (in `session`, whose conversation the server keeps), then read its
    server-sent events to the end."""
    body: dict[str, object] = {"data": [question, [], 5]}
    if session:
        body["session_hash"] = session
    event = client.post(f"{url}gradio_api/call/answer", json=body).json()["event_id"]
    last = ""
    with client.stream("GET", f"{url}gradio_api/call/answer/{event}") as stream:
        for line in stream.iter_lines():
            if line.startswith("data:"):
                last = line
    return last


def user(n: int) -> None:
    if args.client == "gradio":
        from gradio_client import Client

        gradio = Client(url, verbose=False)
    http = httpx.Client(timeout=120)
    for i in range(args.questions):
        question = QUESTIONS[(n + i) % len(QUESTIONS)][0]
        start = time.perf_counter()
        try:
            if args.client == "gradio":
                _, chat = gradio.predict(question, [], 5, api_name="/answer")
                reply = str(chat)
            else:
                session = f"bench-{(n + i * args.clients) % args.sessions}" if args.sessions else None
                reply = ask_http(http, question, session)
            ok = "answered by" in reply
        except Exception as exc:  # a failed request is what this benchmark counts
            ok, reply = False, str(exc)
        with lock:
            (latencies.append(time.perf_counter() - start) if ok else failures.append(reply[:200]))
            if args.client == "http":
                rss_after.append(rss_mb(proc.pid))


def watch_memory(stop_event: threading.Event) -> None:
    while not stop_event.is_set():
        peak[0] = max(peak[0], rss_mb(proc.pid))
        time.sleep(0.5)


try:
    wait_until(lambda: http_ok(url), timeout=120, proc=proc)  # type: ignore[arg-type]
    done = threading.Event()
    threading.Thread(target=watch_memory, args=(done,), daemon=True).start()
    start, cpu_start = time.perf_counter(), cpu_seconds(proc.pid)
    threads = [threading.Thread(target=user, args=(n,)) for n in range(args.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    server_cpu = cpu_seconds(proc.pid) - cpu_start
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
per_answer = 1000 * server_cpu / max(1, len(latencies))
print(f"server CPU {server_cpu:.1f} s = {server_cpu / wall:.0%} of one core; {per_answer:.0f} ms per answer")
print(f"server resident memory: peak {peak[0]:.0f} MB, after the run {settled:.0f} MB")
if len(rss_after) > args.warmup:
    warm = rss_after[args.warmup :]
    sessions = args.sessions or len(rss_after)
    print(
        f"{len(rss_after)} answers from {sessions} sessions: memory after {args.warmup} answers (warm-up) "
        f"{warm[0]:.0f} MB, at the end {warm[-1]:.0f} MB; after warm-up it ranged {min(warm):.0f}–{max(warm):.0f} MB "
        f"(spread {max(warm) - min(warm):.0f} MB)"
    )
for failure in failures[:3]:
    print("failure:", failure)
