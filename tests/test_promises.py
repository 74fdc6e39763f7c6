"""Promises the code keeps about hostile input and its server: disguised text, exports that stay text,
one content check for every way in, a taken port, refused uploads on a read-only app, throttled logins."""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from rag.ui.export import conversation_markdown
from rag.ui.guard import LoginThrottle
from rag.ui.uploads import UploadError, staged

from rag.config import Settings
from rag.ingest.errors import CorpusError
from rag.ingest.formats import parse_file
from rag.text import strip_control
from tests.helpers import ROOT, free_port, serving

RLO_TITLE = "Harmless Survey of Methods \u202edetcarteR\u202c"


def test_bidi_and_zero_width_characters_cannot_disguise_a_title(tmp_path: Path) -> None:
    assert strip_control(RLO_TITLE) == "Harmless Survey of Methods detcarteR"
    assert strip_control("Re\u200btrac\u2060ted\ufeff") == "Retracted"
    mine = tmp_path / "mine.jsonl"
    abstract = "We survey methods \u2067for\u2069 things, and say nothing about any retraction at all."
    mine.write_text(json.dumps({"title": RLO_TITLE, "abstract": abstract}) + "\n", encoding="utf-8")
    (record,) = parse_file(mine)
    assert record.title == "Harmless Survey of Methods detcarteR"
    assert not any(0x2000 <= ord(c) <= 0x206F or c == "\ufeff" for c in record.title + record.abstract)


def test_the_export_writes_paper_and_model_text_as_text() -> None:
    title = "*[click](javascript:alert(1))*"
    evidence = "See ![img](http://127.0.0.1:9/img.png) and <img src=x onerror=alert(1)>."
    history = [
        {"role": "user", "content": "What about [links](http://127.0.0.1:9/)?"},
        {
            "role": "assistant",
            "content": "",
            "text": f"- {title}: {evidence} [1]\n- **bold** claim [1]",
            "citations": [
                {
                    "title": title,
                    "paper_id": "p1",
                    "evidence": evidence,
                    "sources": ["a_b*.jsonl"],
                    "metadata": {"venue": "[v](javascript:1)", "url": "javascript:alert(1)", "doi": "10.1/x<img>"},
                }
            ],
        },
    ]
    md = conversation_markdown(history)
    for live in ("](", "![", "<img", "**bold**", "*[click]"):
        assert live not in md, live
    assert "\\[click\\]" in md and "\\!\\[img\\]" in md and "&lt;img" in md
    assert md.count("\n- ") == 2  # a list answer keeps its bullets


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _cli_error(path: Path, tmp_path: Path) -> str:
    env = {"RAG_INDEX_DIR": str(tmp_path / "index"), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-m", "rag.cli", "ingest", "-q", str(path)], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert out.returncode == 2, out.stderr
    return out.stderr.strip()


def _upload_error(path: Path) -> str:
    with pytest.raises(UploadError) as err, staged([path], 50):
        pass
    return str(err.value)


def test_a_huge_first_jsonl_line_gets_the_abstract_limit_error_in_cli_and_upload(tmp_path: Path) -> None:
    """The first line is longer than the sniffed 64 KiB, and the sniffed part ends in whitespace."""
    head = '{"title": "A Paper With A Very Long Abstract", "abstract": "'
    abstract = "a" * (65535 - len(head)) + " " + "x" * 100_000
    path = _write(tmp_path, "long.jsonl", (head + abstract + '"}\n').encode())
    assert path.read_bytes()[65535:65536] == b" "
    for message in (_cli_error(path, tmp_path), _upload_staged_then_ingest_error(path, tmp_path)):
        assert "RAG_MAX_ABSTRACT_CHARS" in message and "one JSON object per line" not in message


def _upload_staged_then_ingest_error(path: Path, tmp_path: Path) -> str:
    import rag

    settings = Settings(index_dir=tmp_path / "ix", _env_file=None)  # type: ignore[call-arg]
    with staged([path], 50) as files, pytest.raises(rag.CorpusError) as err:
        rag.ingest(files, include_bundled=False, settings=settings, progress=False)
    return str(err.value)


@pytest.mark.parametrize("delimiter", [";", "\t"])
def test_semicolon_and_tab_separated_csv_files_are_read(tmp_path: Path, delimiter: str) -> None:
    row = delimiter.join(["title", "abstract", "year"]) + "\n"
    row += delimiter.join(["Semicolons Are Fine", "We show that a CSV can be separated by other characters.", "2024"])
    (record,) = parse_file(_write(tmp_path, "papers.csv", (row + "\n").encode()))
    assert (record.title, record.metadata) == ("Semicolons Are Fine", {"year": "2024"})


def test_a_utf16_file_gets_one_message_in_cli_and_upload(tmp_path: Path) -> None:
    text = "title,abstract\nA Title,An abstract that is long enough to be one.\n"
    for name, data in (("bom.csv", text.encode("utf-16")), ("nobom.csv", text.encode("utf-16-le"))):
        path = _write(tmp_path, name, data)
        cli, upload = _cli_error(path, tmp_path), _upload_error(path)
        assert "UTF-16" in cli and "UTF-16" in upload
        assert cli.removeprefix("rag: error: ").endswith(upload.split(": ", 1)[1])


def test_a_csv_without_title_and_abstract_columns_says_what_it_found(tmp_path: Path) -> None:
    path = _write(tmp_path, "bad.csv", b"name|summary\nx|y\n")
    with pytest.raises(CorpusError, match=r"bad.csv:1: .*'title' and 'abstract'.*found 'name\|summary'"):
        parse_file(path)


def test_a_taken_port_is_one_line_naming_port_and_exit_2(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {"RAG_INDEX_DIR": str(tmp_path / "index"), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
        out = subprocess.run(
            [sys.executable, "-m", "rag.cli", "ui", "--port", str(port)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert out.returncode == 2
    assert out.stdout == ""  # not "open http://…" first
    assert out.stderr.strip() == f"rag: error: port {port} on 127.0.0.1 is already in use; choose another with --port"
    assert not (tmp_path / "index").exists()  # nothing built for a server that cannot start


def test_login_throttle_slows_repeated_failures_and_forgets_them(caplog: pytest.LogCaptureFixture) -> None:
    now = [1000.0]
    throttle = LoginThrottle(free=3, max_wait=8, forget_after=60, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="rag.ui.guard"):
        for _ in range(3):
            assert throttle.wait("10.0.0.1") == 0
            throttle.record("10.0.0.1", ok=False)
    assert throttle.wait("10.0.0.1") == 1  # the third failure: wait 1 s
    assert throttle.wait("10.0.0.2") == 0  # per address
    assert "3 failed logins in a row from 10.0.0.1" in caplog.text
    for _ in range(6):
        now[0] += throttle.wait("10.0.0.1")
        throttle.record("10.0.0.1", ok=False)
    assert throttle.wait("10.0.0.1") == 8  # doubling, capped
    now[0] += 61
    assert throttle.wait("10.0.0.1") == 0  # forgotten: never locked out for good
    throttle.record("10.0.0.1", ok=False)
    throttle.record("10.0.0.1", ok=True)
    assert throttle.wait("10.0.0.1") == 0


def _post(url: str, data: bytes, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str]]:
    request = urllib.request.Request(url, data=data, headers=headers or {}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as resp:
            return resp.status, dict(resp.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers)


def _multipart(name: str, size: int) -> tuple[bytes, dict[str, str]]:
    boundary = "rag-test-boundary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    body += b"x" * size + f"\r\n--{boundary}--\r\n".encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


@pytest.mark.slow
def test_a_read_only_server_refuses_uploads_and_keeps_nothing(bundled_settings: Settings, tmp_path: Path) -> None:
    port = free_port()
    gradio_tmp = tmp_path / "gradio"
    env = {"RAG_INDEX_DIR": str(bundled_settings.index_dir), "GRADIO_TEMP_DIR": str(gradio_tmp)}
    with serving(["ui", "--port", str(port), "--read-only"], f"http://127.0.0.1:{port}/", env, 120):
        body, headers = _multipart("big.jsonl", 5 * 1024 * 1024)
        for _ in range(3):
            status, _ = _post(f"http://127.0.0.1:{port}/gradio_api/upload", body, headers)
            assert status == 403
    assert not gradio_tmp.exists() or [p for p in gradio_tmp.rglob("*") if p.is_file()] == []


@pytest.mark.slow
def test_repeated_wrong_logins_are_throttled_and_the_right_one_still_works(
    bundled_settings: Settings, tmp_path: Path
) -> None:
    logins = tmp_path / "logins"
    logins.write_text("ada:lovelace\n")
    port = free_port()
    url = f"http://127.0.0.1:{port}/login"
    env = {"RAG_INDEX_DIR": str(bundled_settings.index_dir)}
    with serving(["ui", "--port", str(port), "--auth-file", str(logins)], f"http://127.0.0.1:{port}/", env, 120):
        statuses = [_post(url, b"username=ada&password=guess")[0] for _ in range(20)]
        assert statuses[:5] == [400] * 5  # wrong, checked
        assert statuses[5:] == [429] * 15  # not even checked: wait first
        status, headers = _post(url, b"username=ada&password=lovelace")
        assert status == 429 and int(headers["retry-after"]) >= 1
        time.sleep(int(headers["retry-after"]) + 0.2)
        assert _post(url, b"username=ada&password=lovelace")[0] == 200
        assert _post(url, b"username=ada&password=guess")[0] == 400  # a success clears the record
