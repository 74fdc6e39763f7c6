"""tiktoken works with the network cut off, through the cache that `import rag` seeds."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

NO_NETWORK = """
import socket
def refuse(*a, **k):
    raise OSError("network disabled in this test")
socket.socket.connect = refuse
socket.create_connection = refuse
socket.getaddrinfo = refuse
"""


def test_tiktoken_encodes_offline_from_an_empty_cache(tmp_path: Path) -> None:
    code = (
        NO_NETWORK
        + """
from rag.tokens import ensure_tiktoken_offline
ensure_tiktoken_offline()
import tiktoken
for name in ("cl100k_base", "o200k_base"):
    enc = tiktoken.get_encoding(name)
    assert enc.decode(enc.encode("Universal approximation")) == "Universal approximation"
print(len(tiktoken.encoding_for_model("gpt-4o-mini").encode("hello world")))
"""
    )
    env = {**os.environ, "TIKTOKEN_CACHE_DIR": str(tmp_path / "tk")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "2"
    assert len(list((tmp_path / "tk").iterdir())) == 2


def test_importing_rag_writes_nothing_and_sets_no_environment(tmp_path: Path) -> None:
    """The cache is seeded lazily, the first time tiktoken is needed, not by `import rag`."""
    code = "import os, rag; print('TIKTOKEN_CACHE_DIR' in os.environ)"
    env = {k: v for k, v in os.environ.items() if k != "TIKTOKEN_CACHE_DIR"} | {"HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
    assert not (tmp_path / ".cache").exists()


def test_without_seeding_tiktoken_would_need_the_network(tmp_path: Path) -> None:
    """Guards the test above: the cache, not some other copy, is what makes it work."""
    code = NO_NETWORK + "import tiktoken; tiktoken.get_encoding('cl100k_base')"
    env = {**os.environ, "TIKTOKEN_CACHE_DIR": str(tmp_path / "empty")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode != 0


GUARD = Path(__file__).parent / "netguard"
ROOT = Path(__file__).resolve().parents[1]


def guarded_env(log: Path, index_dir: Path) -> dict[str, str]:
    """The user's environment (no telemetry switches of ours), with every non-loopback connection refused and logged."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("ANONYMIZED_TELEMETRY", "HF_HUB_OFFLINE", "GRADIO_ANALYTICS_ENABLED")
    }
    return {
        **env,
        "PYTHONPATH": f"{GUARD}{os.pathsep}{ROOT}",
        "RAG_NETGUARD_LOG": str(log),
        "RAG_INDEX_DIR": str(index_dir),
    }


def test_the_guard_catches_an_outbound_lookup(tmp_path: Path) -> None:
    log = tmp_path / "net.log"
    code = "import socket\ntry:\n    socket.getaddrinfo('example.com', 443)\nexcept OSError:\n    pass\n"
    subprocess.run([sys.executable, "-c", code], env=guarded_env(log, tmp_path), check=True, timeout=60)
    assert "example.com" in log.read_text()


def test_ingest_ask_eval_and_ui_never_try_to_leave_the_machine(tmp_path: Path, bundled_settings: object) -> None:
    import shutil

    from tests.e2e.browser import CHROMIUM, CHROMIUM_ARGS, ask
    from tests.helpers import free_port, http_ok, stop, wait_until

    log = tmp_path / "net.log"
    index = tmp_path / "index"
    shutil.copytree(bundled_settings.index_dir, index)  # type: ignore[attr-defined]
    env = guarded_env(log, index)
    mine = tmp_path / "mine.jsonl"
    mine.write_text(
        '{"title": "Offline Papers", "abstract": "We show that a paper tool can run with no network at all."}\n'
    )
    rag_cli = [sys.executable, "-m", "rag.cli"]
    for args in (
        ["ingest", "-q", str(mine)],
        ["ask", "Can a paper tool run with no network?"],
        ["eval", "--limit", "3", "--out", str(tmp_path / "eval")],
    ):
        out = subprocess.run([*rag_cli, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, out.stderr
    port = free_port()
    ui = subprocess.Popen([*rag_cli, "ui", "--port", str(port)], cwd=ROOT, env=env, stderr=subprocess.DEVNULL)
    page_requests: list[str] = []
    try:
        wait_until(lambda: http_ok(f"http://127.0.0.1:{port}/"), timeout=120, proc=ui)  # type: ignore[arg-type]
        if CHROMIUM:
            from playwright.sync_api import sync_playwright

            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                page = browser.new_page()
                page.on("request", lambda r: page_requests.append(r.url))
                page.goto(f"http://127.0.0.1:{port}/")
                page.wait_for_selector("#question textarea", timeout=60_000)
                ask(page, "Can a paper tool run with no network?")
                browser.close()
    finally:
        stop(ui)  # type: ignore[arg-type]
    assert not log.exists() or log.read_text() == "", log.read_text()
    outside = [u for u in page_requests if not u.startswith(("http://127.0.0.1", "data:", "blob:"))]
    assert outside == []
