"""Nothing leaves the machine, and nothing waits on disk to leave it: telemetry switches for every process.

The libraries read these once, when they are first imported or initialised, so `import rag` sets them
before any of them loads; child processes (a `chroma run` server, a llama.cpp server, the embedding
workers) inherit them. A value the user set is kept.

What each switch stops (checked against the installed versions; see the README's privacy paragraph):
- onnxruntime >= 1.29 on Linux writes a device id and a queue of events (OS, CPU, memory, interpreter
  path) under ~/.cache/Microsoft/DeveloperTools/.onnxruntime, to upload when a network is there;
- chromadb's product telemetry (posthog), also switched off in its client settings (rag.index.store);
- Gradio's usage analytics and version check;
- huggingface_hub's telemetry (pulled in by Gradio), and any library honouring DO_NOT_TRACK.
Not telemetry, but also kept out of the user's home: matplotlib's font cache (Gradio imports matplotlib on
every event; `rag eval` plots with it) goes to the project's own cache folder.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

log = logging.getLogger(__name__)

SWITCHES: dict[str, str] = {
    "ORT_DISABLE_TELEMETRY": "1",
    "ORT_TELEMETRY_DISABLED": "1",  # the name newer onnxruntime releases read
    "ANONYMIZED_TELEMETRY": "False",
    "GRADIO_ANALYTICS_ENABLED": "False",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "DO_NOT_TRACK": "1",
}


def apply_privacy_switches() -> None:
    """Set each switch the user has not set. Warns if onnxruntime was imported first (too late for it)."""
    ort_late = "onnxruntime" in sys.modules and "ORT_DISABLE_TELEMETRY" not in os.environ
    for name, value in SWITCHES.items():
        os.environ.setdefault(name, value)
    os.environ.setdefault("MPLCONFIGDIR", str(Path.home() / ".cache" / "paper-rag" / "matplotlib"))
    if ort_late:
        log.warning(
            "onnxruntime was imported before rag, so its telemetry is on in this process; "
            "set ORT_DISABLE_TELEMETRY=1 in the environment (or import rag first)"
        )
