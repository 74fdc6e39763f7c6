"""Upload staging for the Library tab: safe names, content checks, size limit, the private folder; UI binding rules."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from rag.ui.app import launch, parse_auth
from rag.ui.uploads import UploadError, safe_name, staged


@pytest.mark.parametrize(
    ("given", "safe"),
    [
        ("../../etc/passwd.jsonl", "passwd.jsonl"),
        ("..\\..\\win.csv", "win.csv"),
        (".hidden.txt", "hidden.txt"),
        ("my papers (1).jsonl", "my_papers_1_.jsonl"),
        ("<script>.jsonl", "_script_.jsonl"),
        ("", "upload"),
    ],
)
def test_a_file_name_can_never_leave_the_folder(given: str, safe: str) -> None:
    assert safe_name(given) == safe


def _file(tmp_path: Path, name: str, content: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("paper.pdf", b"%PDF-1.7", "only .jsonl, .csv, .txt"),
        ("image.csv", b"\x89PNG\r\n\x1a\n\x00\x00", "binary file"),
        ("latin1.txt", "Caf\xe9 au lait, a paper title\n".encode("latin-1"), "not valid UTF-8"),
        ("empty.jsonl", b"\n\n", "empty"),
        ("list.jsonl", b"[1, 2, 3]\n", "one JSON object per line"),
        ("one-column.csv", b"just a title\n", "header row"),
    ],
)
def test_content_must_fit_the_extension(tmp_path: Path, name: str, content: bytes, message: str) -> None:
    with pytest.raises(UploadError, match=message), staged([_file(tmp_path, name, content)], 50):
        pass


def test_staged_copies_live_in_a_private_folder_that_is_removed(tmp_path: Path) -> None:
    good = _file(tmp_path, "mine.jsonl", (json.dumps({"title": "T", "abstract": "A"}) + "\n").encode())
    other = tmp_path / "sub"
    other.mkdir()
    same_name = _file(other, "mine.jsonl", good.read_bytes())
    with staged([good, same_name], 50) as copies:
        folder = copies[0].parent
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        assert [c.name for c in copies] == ["mine.jsonl", "mine-2.jsonl"]
        assert all(c.parent == folder for c in copies)
    assert not folder.exists()


def test_the_size_limit_is_enforced(tmp_path: Path) -> None:
    big = _file(tmp_path, "big.txt", b"a" * (1024 * 1024 + 1))
    with pytest.raises(UploadError, match="over the 1 MB limit"), staged([big], 1):
        pass


def test_binding_beyond_loopback_needs_a_login_or_read_only() -> None:
    with pytest.raises(ValueError, match=r"--auth user:password .* or --read-only"):
        launch("0.0.0.0", 7860)
    with pytest.raises(ValueError, match="share link"):
        launch("127.0.0.1", 7860, share=True)
    assert parse_auth("ada:secret") == ("ada", "secret")
    with pytest.raises(ValueError, match="user:password"):
        parse_auth("ada")


def test_auth_file_lists_logins_and_says_which_line_is_wrong(tmp_path: Path) -> None:
    from rag.ui.app import read_auth_file

    good = tmp_path / "logins"
    good.write_text("# team\nada:secret\n\ngrace:hopper\n")
    assert read_auth_file(good) == [("ada", "secret"), ("grace", "hopper")]
    bad = tmp_path / "bad"
    bad.write_text("ada:secret\njust-a-name\n")
    with pytest.raises(ValueError, match="bad:2: each line must be user:password"):
        read_auth_file(bad)
    with pytest.raises(ValueError, match="cannot read the auth file"):
        read_auth_file(tmp_path / "missing")
