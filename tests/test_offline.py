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
import rag, tiktoken
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


def test_without_seeding_tiktoken_would_need_the_network(tmp_path: Path) -> None:
    """Guards the test above: the cache, not some other copy, is what makes it work."""
    code = NO_NETWORK + "import tiktoken; tiktoken.get_encoding('cl100k_base')"
    env = {**os.environ, "TIKTOKEN_CACHE_DIR": str(tmp_path / "empty")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode != 0
