"""Bad input and faults give a one-line error that says what to do: in the CLI (no traceback) and in the chat.

The read-only folder and the full disk are real: a read-only bind mount and a 4 MB tmpfs, each in a private
mount namespace (`unshare -m`, which needs root; skipped otherwise).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import rag
from rag.config import Settings
from rag.index.paper_index import PaperIndex
from rag.index.search import search
from tests.helpers import run_rag

ROOT = Path(__file__).resolve().parents[1]
CAN_MOUNT = os.geteuid() == 0 and shutil.which("unshare") is not None and sys.platform == "linux"
needs_mount = pytest.mark.skipif(not CAN_MOUNT, reason="needs root and unshare for a private mount namespace")


def assert_one_line_error(out: subprocess.CompletedProcess[str], *words: str) -> None:
    assert out.returncode != 0
    assert "Traceback" not in out.stderr, out.stderr
    errors = [line for line in out.stderr.splitlines() if line.startswith("rag: error:")]
    assert len(errors) == 1, out.stderr
    for word in words:
        assert word in errors[0], errors[0]


def test_a_question_with_invalid_utf8_is_a_clear_error(bundled_settings: Settings) -> None:
    env = {"RAG_INDEX_DIR": str(bundled_settings.index_dir)}
    for command in ("ask", "search"):
        out = run_rag(command, b"lottery \xff ticket", env=env)
        assert_one_line_error(out, "not valid UTF-8", "type it again")
    with pytest.raises(ValueError, match="not valid UTF-8"):
        rag.ask("lottery \udcff ticket", settings=bundled_settings)


def test_history_turns_with_other_keys_are_a_clear_error(bundled_settings: Settings) -> None:
    with pytest.raises(ValueError, match=r"history\[0\] must be a dict with 'role' and 'content' keys"):
        rag.ask("and then?", history=[{"role": "user", "text": "hi"}], settings=bundled_settings)


def test_collection_with_a_path_is_a_clear_error(tmp_path: Path) -> None:
    out = run_rag("search", "lottery", env={"RAG_INDEX_DIR": str(tmp_path), "RAG_COLLECTION": "../../etc/papers"})
    assert_one_line_error(out, "RAG_COLLECTION='../../etc/papers'", "not a path")
    assert not any(tmp_path.iterdir())


def test_k_out_of_range_is_a_clear_error(bundled_settings: Settings) -> None:
    env = {"RAG_INDEX_DIR": str(bundled_settings.index_dir)}
    for command in (["search", "lottery", "-k", "0"], ["ask", "lottery", "-k", "99"]):
        out = run_rag(*command, env=env)
        assert out.returncode == 2 and "k must be from 1 to 50" in out.stderr and "Traceback" not in out.stderr
    with pytest.raises(ValueError, match=r"^k=0: Input should be greater than or equal to 1"):
        rag.ask("lottery", k=0, settings=bundled_settings)
    with pytest.raises(ValueError, match="k must be a whole number from 1 to 50"):
        rag.search("lottery", k=0, settings=bundled_settings)


def test_verbose_flag_works_before_eval() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "rag.cli", "-v", "eval", "--help"], cwd=ROOT, capture_output=True, text=True
    )
    assert out.returncode == 0 and "usage: rag eval" in out.stdout


def test_inconsistent_bm25_files_are_rebuilt_by_search_and_ingest(fresh_settings: Settings, tmp_path: Path) -> None:
    papers = rag.load_corpus()[:6]
    f = tmp_path / "p.jsonl"
    f.write_text("".join(json.dumps({"title": p.title, "abstract": p.abstract}) + "\n" for p in papers))
    rag.ingest([f], settings=fresh_settings, progress=False)
    folder = PaperIndex(fresh_settings).bm25_folder

    def ids_file() -> Path:
        (segment,) = json.loads((folder / "manifest.json").read_text())["segments"]
        return folder / segment / "chunk_ids.json"

    def cut_ids() -> None:
        path = ids_file()
        path.write_text(json.dumps(json.loads(path.read_text())[:2]))  # parses, same digest, rows point past the ids

    cut_ids()
    hits = search(PaperIndex(fresh_settings), papers[5].title, k=3, retriever="bm25")  # a process starting afresh
    assert hits[0].title == papers[5].title
    cut_ids()
    out = run_rag("ingest", "-q", str(f), env={"RAG_INDEX_DIR": str(fresh_settings.index_dir)})
    assert out.returncode == 0, out.stderr
    (segment,) = PaperIndex(fresh_settings).bm25().segments
    assert len(json.loads(ids_file().read_text())) == segment.model.scores["num_docs"] == len(segment.chunk_ids) > 2


@needs_mount
def test_a_read_only_index_is_a_clear_error(bundled_settings: Settings, tmp_path: Path) -> None:
    index = tmp_path / "index"
    shutil.copytree(bundled_settings.index_dir, index)
    readonly = f"mount --bind {index} {index} && mount -o remount,bind,ro {index}"
    env = {"RAG_INDEX_DIR": str(index)}
    for args in (["search", "lottery"], ["ask", "What is a lottery ticket?"], ["ingest", "-q"]):
        out = run_rag(*args, env=env, prefix=readonly)
        assert_one_line_error(out, "is read-only", "RAG_INDEX_DIR")
    chat = run_python_in_namespace(
        readonly,
        "from ui.app import respond; from rag.config import Settings; "
        f"s = Settings(index_dir={str(index)!r}, _env_file=None); "
        "print(list(respond('What is a lottery ticket?', [], [], 3, s))[-1][1][-1]['content'])",
    )
    shown = chat.stdout.replace("\\", "")  # the chat's Markdown escapes
    assert "is read-only" in shown and "Traceback" not in shown + chat.stderr
    ui = run_rag("ui", "--port", "1", env=env, prefix=readonly)  # fails before binding
    assert_one_line_error(ui, "is read-only")


def run_python_in_namespace(prefix: str, code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["unshare", "-m", "sh", "-c", f'{prefix} && exec "$0" -c "$1"', sys.executable, code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


@needs_mount
def test_a_full_disk_during_ingest_is_a_clear_error_and_a_rerun_completes(tmp_path: Path) -> None:
    from rag.ingest.chunking import chunk_papers

    corpus = tmp_path / "corpus.jsonl"
    papers = rag.load_corpus()[:90]
    corpus.write_text("".join(json.dumps({"title": p.title, "abstract": p.abstract}) + "\n" for p in papers))
    mount = tmp_path / "small"
    mount.mkdir()
    rag_cli = f"{sys.executable} -m rag.cli"
    script = (
        f"mount -t tmpfs -o size=2m tmpfs {mount} && "
        f"{{ {rag_cli} ingest -q {corpus} 2>{tmp_path}/first.err; echo $? > {tmp_path}/first.rc; }} && "
        f"mount -o remount,size=256m {mount} && {rag_cli} ingest -q --json {corpus}"
    )
    out = subprocess.run(
        ["unshare", "-m", "sh", "-c", script],
        cwd=ROOT,
        env={**os.environ, "RAG_INDEX_DIR": str(mount / "index")},
        capture_output=True,
        text=True,
        timeout=900,
    )
    first = subprocess.CompletedProcess(
        [], int((tmp_path / "first.rc").read_text()), "", (tmp_path / "first.err").read_text()
    )
    assert_one_line_error(first, "is full", "free some space", "rag ingest")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["chunks"] == len({c.chunk_id for c in chunk_papers(papers)}) and report["papers"] == 90


def test_a_secret_in_the_base_url_is_never_shown(bundled_settings: Settings) -> None:
    from rag.ui.app import header, respond

    url = "http://user:SECRET@127.0.0.1:9/v1?api_key=TOKEN"
    settings = bundled_settings.with_overrides(openai_base_url=url, llm="openai", llm_max_retries=0, llm_timeout=5)
    env = {"RAG_INDEX_DIR": str(bundled_settings.index_dir), "OPENAI_BASE_URL": url, "RAG_LLM_MAX_RETRIES": "0"}
    out = run_rag("ask", "What is a lottery ticket?", env=env)
    assert out.returncode == 2 and "unreachable" in out.stderr
    chat = list(respond("What is a lottery ticket?", [], [], 3, settings))[-1][1][-1]["content"]
    shown = [out.stdout + out.stderr, chat, header(settings, 248)]
    for text in shown:
        assert "SECRET" not in text and "TOKEN" not in text and "user:" not in text
    assert "127.0.0.1:9" in shown[0] and "127.0.0.1:9" in shown[2]


def test_unexpected_failures_are_one_line_unless_verbose(bundled_settings: Settings, tmp_path: Path) -> None:
    """A bug anywhere still reaches the user as one line; `rag -v` shows the traceback."""
    (tmp_path / "sitecustomize.py").write_text(
        "import rag.index.search\n"
        "def boom(*a, **k):\n    raise RuntimeError('simulated bug')\n"
        "rag.index.search._search = boom\n"
    )
    env = {"PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}", "RAG_INDEX_DIR": str(bundled_settings.index_dir)}
    out = run_rag("search", "lottery", env=env)
    assert_one_line_error(out, "unexpected RuntimeError: simulated bug", "rag -v")
    loud = run_rag("-v", "search", "lottery", env=env)
    assert "Traceback" in loud.stderr


def test_path_parameters_and_eval_k_are_handled() -> None:
    from rag.config import redact_url

    assert "secret" not in redact_url("http://tok@host:8/v1;key=secret?api_key=x") and "host:8" in redact_url(
        "http://tok@host:8/v1;key=secret"
    )
    out = run_rag("eval", "--k", "0")
    assert out.returncode == 2 and "k must be from 1 to 50" in out.stderr and "Traceback" not in out.stderr
