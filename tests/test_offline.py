"""tiktoken works with the network cut off, through the cache that `import rag` seeds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rag.privacy import SWITCHES

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


def test_importing_rag_writes_nothing_and_sets_only_the_privacy_switches(tmp_path: Path) -> None:
    """The tiktoken cache is seeded lazily, the first time tiktoken is needed, not by `import rag`; the
    telemetry switches are set at once (libraries read them when they load), but never over the user's."""
    code = (
        "import os, json, rag; from rag.privacy import SWITCHES; "
        "print(json.dumps([('TIKTOKEN_CACHE_DIR' in os.environ), {k: os.environ.get(k) for k in SWITCHES}]))"
    )
    env = {k: v for k, v in os.environ.items() if k != "TIKTOKEN_CACHE_DIR" and k not in SWITCHES}
    env |= {"HOME": str(tmp_path), "DO_NOT_TRACK": "0"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    seeded, switches = json.loads(out.stdout)
    assert seeded is False
    assert switches == {**SWITCHES, "DO_NOT_TRACK": "0"}  # the user's own value is kept
    assert not (tmp_path / ".cache").exists()


def test_onnxruntime_writes_no_telemetry_queue(tmp_path: Path) -> None:
    """onnxruntime >= 1.29 keeps a device id and an event queue under ~/.cache/Microsoft unless told not to."""
    code = "import rag\nrag.search('lottery tickets', k=1, settings=rag.Settings(index_dir='{ix}', _env_file=None))"
    for name, prelude in (("with", ""), ("without", "import os; os.environ['ORT_DISABLE_TELEMETRY'] = '0'\n")):
        home = tmp_path / name
        env = {k: v for k, v in os.environ.items() if k not in SWITCHES} | {"HOME": str(home)}
        run = prelude + code.format(ix=tmp_path / f"ix-{name}")
        out = subprocess.run([sys.executable, "-c", run], env=env, capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr
        queued = (home / ".cache" / "Microsoft" / "DeveloperTools").exists()
        if name == "with":
            assert not queued, "onnxruntime wrote its telemetry queue"
        elif not queued:  # an onnxruntime without 1DS telemetry: nothing to guard against
            pytest.skip("this onnxruntime keeps no telemetry queue, so the guard is not exercised")


def test_without_seeding_tiktoken_would_need_the_network(tmp_path: Path) -> None:
    """Guards the test above: the cache, not some other copy, is what makes it work."""
    code = NO_NETWORK + "import tiktoken; tiktoken.get_encoding('cl100k_base')"
    env = {**os.environ, "TIKTOKEN_CACHE_DIR": str(tmp_path / "empty")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode != 0


GUARD = Path(__file__).parent / "netguard"
ROOT = Path(__file__).resolve().parents[1]


# What the project may write under HOME: its data (index, derived models) and its caches (tiktoken, matplotlib).
OWN_FOLDERS = (Path(".local/share/paper-rag"), Path(".cache/paper-rag"))


def guarded_env(log: Path, index_dir: Path, home: Path | None = None) -> dict[str, str]:
    """The user's environment with none of our privacy switches set (the code must set them), every
    non-loopback connection refused and logged, and, given `home`, a fresh HOME."""
    env = {k: v for k, v in os.environ.items() if k not in SWITCHES and k not in ("HF_HUB_OFFLINE", "MPLCONFIGDIR")}
    return {
        **env,
        "PYTHONPATH": f"{GUARD}{os.pathsep}{ROOT}",
        "RAG_NETGUARD_LOG": str(log),
        "RAG_INDEX_DIR": str(index_dir),
        **({"HOME": str(home)} if home else {}),
    }


def files_outside_own_folders(home: Path) -> list[str]:
    """Files written under `home` that are not in the project's own folders (telemetry queues, caches)."""
    return sorted(
        str(p.relative_to(home))
        for p in home.rglob("*")
        if not p.is_dir() and not any(p.relative_to(home).is_relative_to(own) for own in OWN_FOLDERS)
    )


def test_the_guard_catches_an_outbound_lookup(tmp_path: Path) -> None:
    log = tmp_path / "net.log"
    code = "import socket\ntry:\n    socket.getaddrinfo('example.com', 443)\nexcept OSError:\n    pass\n"
    subprocess.run([sys.executable, "-c", code], env=guarded_env(log, tmp_path), check=True, timeout=60)
    assert "example.com" in log.read_text()


def test_every_command_stays_on_the_machine_and_writes_only_its_own_folders(
    tmp_path: Path, bundled_settings: object
) -> None:
    """ingest, search, ask, eval, local-model --check and ui, each with a fresh HOME and no privacy switch set:
    no connection beyond loopback, and no file under HOME outside the project's folders (no telemetry queue)."""
    import importlib.util
    import shutil

    from tests.e2e.browser import CHROMIUM, CHROMIUM_ARGS, ask
    from tests.helpers import free_port, http_ok, stop, wait_until

    log = tmp_path / "net.log"
    index = tmp_path / "index"
    shutil.copytree(bundled_settings.index_dir, index)  # type: ignore[attr-defined]
    home = tmp_path / "home"
    home.mkdir()
    env = guarded_env(log, index, home)
    mine = tmp_path / "mine.jsonl"
    mine.write_text(
        '{"title": "Offline Papers", "abstract": "We show that a paper tool can run with no network at all."}\n'
    )
    rag_cli = [sys.executable, "-m", "rag.cli"]
    commands = [
        ["ingest", "-q", str(mine)],
        ["search", "papers offline", "-k", "2"],
        ["ask", "Can a paper tool run with no network?"],
        ["eval", "--limit", "3", "--out", str(tmp_path / "eval")],
    ]
    if importlib.util.find_spec("llama_cpp") is not None:
        commands.append(["local-model", "--check"])
    for args in commands:
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
    assert files_outside_own_folders(home) == []
    outside = [u for u in page_requests if not u.startswith(("http://127.0.0.1", "data:", "blob:"))]
    assert outside == []
