"""The `rag` command: ingest, search, ask, ui, eval and local-model; errors are one line that says what to do."""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from textwrap import shorten

import rag
from rag.answer.answerers import ANSWERERS, BackendError
from rag.index.errors import RagIndexError
from rag.index.filters import parse_years
from rag.index.search import RETRIEVERS, k_value
from rag.ingest.errors import CorpusError
from rag.local.server import LocalModelError
from rag.offline import ModelFileError
from rag.provenance import describe, links_of

Handler = Callable[[argparse.Namespace], int]


def _cmd_ingest(args: argparse.Namespace) -> int:
    report = rag.ingest(
        args.paths or None,
        include_bundled=True if args.with_bundled else None,
        sync=args.sync,
        rebuild=args.rebuild,
        progress=not args.quiet,
    )
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(
            f"{report.papers} papers in the inputs: {report.new_papers} new, {report.updated_papers} updated, "
            f"{report.unchanged_papers} unchanged; index at {report.location} holds {report.chunks} chunks "
            f"({report.added} added, {report.removed} removed) in {report.seconds:.2f} s"
        )
    return 0


def _cmd_search(args: argparse.Namespace) -> int:
    hits = rag.search(args.query, k=args.k, retriever=args.retriever, where=_filter(args))
    if args.json:
        print(json.dumps([h.to_dict() for h in hits], indent=2, ensure_ascii=False))
        return 0
    if not hits:
        print("no matching papers")
    for rank, hit in enumerate(hits, start=1):
        snippet = shorten(hit.text.split("\n", 1)[-1], 240, placeholder=" …")  # whole words
        print(f"{rank}. {hit.title}\n   {_found_by(hit)}\n   {snippet}")
    return 0


def _filter(args: argparse.Namespace) -> rag.PaperFilter | None:
    """The --years/--author/--source/--category options as a filter (None when none is given)."""
    first, last = parse_years(args.years) if args.years else (None, None)
    given = rag.PaperFilter(first, last, args.author, args.source, args.category)
    return given if given.active else None


def _add_filter_options(p: argparse.ArgumentParser) -> None:
    group = p.add_argument_group("filters (applied before ranking)")
    group.add_argument("--years", metavar="RANGE", help="2022, 2022- (from), -2021 (up to) or 2019-2021")
    group.add_argument("--author", help="an author's surname (case and accents ignored)")
    group.add_argument("--source", metavar="FILE", help="a source file name, as `rag ingest` read it")
    group.add_argument("--category", help="an arXiv category, e.g. cs.LG")


def _found_by(hit: rag.Hit) -> str:
    """Why a paper is listed, in words: its rank by meaning (dense) and by keywords (BM25)."""
    ranks = [
        f"{label} #{int(hit.signals[key])}"
        for label, key in (("meaning", "dense_rank"), ("keywords", "bm25_rank"))
        if hit.signals.get(key)
    ]
    return "found by " + (" and ".join(ranks) if ranks else "its title")


def _read_history(path: Path | None) -> list[dict[str, object]] | None:
    """A conversation from a JSON file: a list of turns as `rag.ask(history=…)` takes them."""
    if path is None:
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"cannot read --history {path}: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"--history {path}:{exc.lineno}: not JSON ({exc.msg}); give a list of turns") from None
    if not isinstance(data, list):
        raise ValueError(f"--history {path} must hold a JSON list of {{'role', 'content'[, 'cited']}} turns")
    return data


def _cmd_ask(args: argparse.Namespace) -> int:
    overrides = {"k": args.k, "llm": args.backend, "where": _filter(args)}
    history = None if args.standalone else _read_history(args.history)
    if args.json:
        print(json.dumps(rag.ask(args.question, history, **overrides).to_dict(), indent=2, ensure_ascii=False))
        return 0
    answer: rag.Answer | None = None
    draft = ""
    for piece in rag.ask_stream(args.question, history, **overrides):
        if isinstance(piece, rag.Answer):
            answer = piece
        elif sys.stdout.isatty():
            draft += piece
            print(piece, end="", flush=True)
    assert answer is not None
    if answer.standalone_question != answer.question:
        again = "" if args.standalone else " (add --standalone to ask it as typed)"
        print(f"Searched for: {answer.standalone_question}{again}\n")
    if sys.stdout.isatty():
        # The final text replaces the streamed draft: back to its first line, clear to the end of the screen.
        width = max(1, shutil.get_terminal_size().columns)
        rows = sum(max(1, -(-len(line) // width)) for line in draft.split("\n"))
        print("\r" + (f"\033[{rows - 1}A" if rows > 1 else "") + "\033[J", end="")
    print(answer.text)
    if answer.citations:
        print("\nSources:")
        for n, c in enumerate(answer.citations, start=1):
            origin = " · ".join(part for part in (describe(c.metadata), *links_of(c.metadata)) if part)
            print(f"  [{n}] {c.title}" + (f"\n      {origin}" if origin else ""))
    for d in answer.dropped_citations:
        print(f"  (dropped {d.cited}: {d.reason})")
    if answer.unsupported_sentences:
        print(f"  ({len(answer.unsupported_sentences)} sentence(s) not supported by their cited abstracts)")
    support = f"; {answer.support} support ({answer.confidence:.0%})" if answer.support else ""
    print(f"\n— answered by {answer.backend} in {sum(answer.timings.values()):.2f} s{support}")
    return 0


def _cmd_local_model(args: argparse.Namespace) -> int:
    from rag.config import model_cache_dir
    from rag.local import catalog
    from rag.local.model import REBUILD_HINT, check_build
    from rag.local.server import serve

    if args.list:
        for name, entry in catalog.MODELS.items():
            print(f"{name:14} {entry.description}")
        return 0
    model, alias = catalog.resolve(args.model, model_cache_dir())
    if args.check:
        result = check_build(model, tokens=args.check_tokens)
        if result.ok:
            print(f"llama.cpp runs on this CPU\n{result.detail}")
            return 0
        print(f"rag: error: {result.detail}\n{REBUILD_HINT}", file=sys.stderr)
        return 3
    return serve(model, args.host, args.port, rag.get_settings().local_model_state_dir, alias, args.threads)


def _cmd_ui(args: argparse.Namespace) -> int:
    from rag.ui.app import launch

    launch(args.host, args.port, args.share, auth=args.auth, read_only=args.read_only, auth_file=args.auth_file)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rag", description="Ask questions of ML paper abstracts, with citations.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens (to stderr)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("ingest", help="index papers (default: the bundled collection)")
    p.add_argument(
        "paths", nargs="*", help=".jsonl (arXiv metadata too), .csv, listing .txt, .bib, .ris or CSL-JSON .json files"
    )
    p.add_argument("--with-bundled", action="store_true", help="also ingest the bundled collection with PATHS")
    p.add_argument("--sync", action="store_true", help="remove indexed papers that are not in the inputs")
    p.add_argument("--rebuild", action="store_true", help="drop the index and embed everything again")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=_cmd_ingest)

    p = sub.add_parser("search", help="find the papers that best match a query")
    p.add_argument("query")
    p.add_argument("-k", type=k_value, default=None, help="number of papers (default RAG_TOP_K, 5)")
    p.add_argument("--retriever", choices=RETRIEVERS, default=None, help="default RAG_RETRIEVER")
    p.add_argument("--json", action="store_true")
    _add_filter_options(p)
    p.set_defaults(handler=_cmd_search)

    p = sub.add_parser("ask", help="answer a question from the papers, citing them")
    p.add_argument("question")
    p.add_argument("-k", type=k_value, default=None, help="papers to retrieve (default RAG_TOP_K, 5)")
    p.add_argument("--backend", choices=["auto", *ANSWERERS], default=None, help="override RAG_LLM")
    p.add_argument("--json", action="store_true", help="print the whole Answer as JSON")
    p.add_argument(
        "--history",
        type=Path,
        metavar="FILE",
        help="the conversation so far: a JSON list of {role, content[, cited paper ids]} turns",
    )
    p.add_argument("--standalone", action="store_true", help="ask as typed, without the conversation")
    _add_filter_options(p)
    p.set_defaults(handler=_cmd_ask)

    p = sub.add_parser("local-model", help="serve a local model (OpenAI-compatible) on loopback")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument(
        "--model",
        default=None,
        help="smollm2 (default, the local extra), qwen2.5-1.5b (the qwen extra) or a .gguf file; --list shows them",
    )
    p.add_argument("--list", action="store_true", help="list the models it knows")
    p.add_argument("--threads", type=int, default=None, help="llama.cpp threads (default: the cores not busy)")
    p.add_argument(
        "--check", action="store_true", help="only check that llama.cpp generates on this CPU (in a subprocess)"
    )
    p.add_argument("--check-tokens", type=int, default=1, help=argparse.SUPPRESS)
    p.set_defaults(handler=_cmd_local_model)

    p = sub.add_parser("ui", help="open the chat in the browser (builds the index first if needed)")
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (default: loopback only)")
    p.add_argument("--port", type=int, default=7860)
    p.add_argument("--share", action="store_true", help="also create a public Gradio share link")
    p.add_argument("--auth", metavar="USER:PASSWORD", help="ask for this login (default: RAG_UI_AUTH)")
    p.add_argument("--auth-file", type=Path, metavar="FILE", help="logins, one user:password per line")
    p.add_argument("--read-only", action="store_true", help="no upload or removal of papers")
    p.set_defaults(handler=_cmd_ui)
    # `rag eval ...` is handed whole to eval.run (see main); listed here for --help.
    sub.add_parser("eval", help="run the evaluation set (see `rag eval --help`)", add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    verbose = False
    while argv[:1] and argv[0] in ("-v", "--verbose"):  # global flags may precede any command, eval too
        verbose = True
        argv = argv[1:]
    level = logging.INFO if verbose else logging.WARNING
    try:
        if argv[:1] == ["eval"]:
            from rag.eval.run import main  # the eval/ folder, installed as rag.eval (mypy checks it as `eval`)

            run_eval: Callable[[list[str]], int] = main
            logging.basicConfig(level=level, format="rag: %(message)s")
            return run_eval(argv[1:])
        args = build_parser().parse_args(argv)
        verbose = verbose or args.verbose
        logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="rag: %(message)s")
        handler: Handler = args.handler
        return handler(args)
    except (CorpusError, RagIndexError, ModelFileError, BackendError, LocalModelError, ValueError) as exc:
        print(f"rag: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("rag: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug or an unforeseen failure: one line, the traceback only when asked
        if verbose:
            raise
        print(f"rag: error: unexpected {type(exc).__name__}: {exc}; run `rag -v ...` for details", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
