"""Token counting, shared by all layers: MiniLM word-pieces (chunks, queries) and tiktoken (prompts).

The word-piece tokenizer ships with this package (rag/data/minilm, sha256-checked). tiktoken would
download its encodings on first use; `tiktoken_encoding` first makes them available offline.
"""

from __future__ import annotations

import threading
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from rag.offline import seed_tiktoken_cache, verified_file

if TYPE_CHECKING:
    import tiktoken
    from tokenizers import Tokenizer

MINILM_WINDOW = 256  # word-pieces the model reads, [CLS] and [SEP] included
TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
_REINSTALL = "reinstall paper-rag (pip install -e .) to restore it"
_SEED_LOCK = threading.Lock()
_seeded = False


def tokenizer_file() -> Path:
    return Path(str(resources.files("rag") / "data" / "minilm" / "tokenizer.json"))


def load_wordpiece_tokenizer() -> Tokenizer:
    """A fresh MiniLM word-piece tokenizer (callers set their own truncation and padding)."""
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(verified_file(tokenizer_file(), TOKENIZER_SHA256, _REINSTALL)))


@lru_cache(maxsize=1)
def english_words() -> frozenset[str]:
    """The whole words of MiniLM's word-piece vocabulary (about 20,000): a list of common English words,
    shipped already, that tells a name or a typo ("rwkv", "simclr") from an everyday word ("cheaper")."""
    import json

    vocab = json.loads(verified_file(tokenizer_file(), TOKENIZER_SHA256, _REINSTALL).read_text())["model"]["vocab"]
    return frozenset(w for w in vocab if w.isalpha() and w.islower())


@lru_cache(maxsize=1)
def _counting_tokenizer() -> Tokenizer:
    tok = load_wordpiece_tokenizer()
    tok.no_truncation()
    tok.no_padding()
    return tok


def count_tokens(text: str) -> int:
    """Word-pieces in `text`, special tokens excluded."""
    return len(_counting_tokenizer().encode(text, add_special_tokens=False).ids)


def token_offsets(text: str) -> list[tuple[int, int]]:
    """(start, end) character offsets of each word-piece of `text`."""
    return [tuple(o) for o in _counting_tokenizer().encode(text, add_special_tokens=False).offsets]  # type: ignore[misc]


def truncate_to_tokens(text: str, max_tokens: int) -> str:
    """The longest prefix of `text` with at most `max_tokens` word-pieces."""
    enc = _counting_tokenizer().encode(text, add_special_tokens=False)
    if len(enc.ids) <= max_tokens:
        return text
    return text[: enc.offsets[max_tokens - 1][1]]


def ensure_tiktoken_offline() -> None:
    """Seed tiktoken's cache from the packaged encodings, once per process, before tiktoken is used."""
    global _seeded
    with _SEED_LOCK:
        if not _seeded:
            seed_tiktoken_cache()
            _seeded = True


@lru_cache(maxsize=8)
def tiktoken_encoding(model: str) -> tiktoken.Encoding:
    ensure_tiktoken_offline()
    import tiktoken

    try:
        return tiktoken.encoding_for_model(model)
    except KeyError:
        return tiktoken.get_encoding("cl100k_base")


def count_prompt_tokens(text: str, model: str) -> int:
    return len(tiktoken_encoding(model).encode(text, disallowed_special=()))


def truncate_prompt_tokens(text: str, max_tokens: int, model: str) -> str:
    """`text` cut to at most `max_tokens` tokens of the model's encoding (tokenized once)."""
    enc = tiktoken_encoding(model)
    tokens = enc.encode(text, disallowed_special=())
    return text if len(tokens) <= max_tokens else enc.decode(tokens[:max_tokens])
