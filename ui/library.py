"""The Library tab: what the collection holds, a searchable paper table, upload and removal.

A thin layer over `rag.collection_stats`, `rag.indexed_papers`, `rag.search`, `rag.ingest` and
`rag.remove_papers`. Every string shown is escaped (ui.format.escape). Writes go through the
index's ingest lock, so two uploads (or an upload and a removal) run one after the other and a
chat answered meanwhile sees the index before or after, never half-written.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gradio as gr
from filelock import FileLock, Timeout
from gradio.utils import get_upload_folder

import rag
from rag.config import Settings
from rag.library import library_for
from rag.provenance import authors_of, year_of
from rag.types import Paper

from .export import save_js
from .filters import filter_controls, filter_note, where_from
from .format import MATH_DELIMITERS, code_span, escape, format_error, provenance
from .uploads import ALLOWED, UploadError, relative_message, staged

log = logging.getLogger(__name__)

COLUMNS = ["Title", "Year", "Authors", "Source file", "Upvotes"]
# On a phone the table keeps title and year; authors, source file and upvotes reappear on wider screens.
CSS = """
@media (max-width: 640px) {
  #library-table th:nth-child(n+3), #library-table td:nth-child(n+3),
  #library-table [role=gridcell][data-col="2"], #library-table [role=gridcell][data-col="3"],
  #library-table [role=gridcell][data-col="4"] { display: none; }
  /* The two columns left share the width: the title all but a year's. */
  #library-table .virtual-body { width: 100% !important; }
  #library-table table { table-layout: fixed !important; width: 100% !important; }
  #library-table th:nth-child(1), #library-table td:nth-child(1), #library-table [role=gridcell][data-col="0"] {
    flex: 1 1 auto !important; width: auto !important; min-width: 0 !important; max-width: none !important; }
  #library-table th:nth-child(2), #library-table td:nth-child(2), #library-table [role=gridcell][data-col="1"] {
    flex: 0 0 6em !important; width: 6em !important; min-width: 6em !important; max-width: 6em !important;
    white-space: nowrap; }
  #library-table th:nth-child(2) * { white-space: nowrap; }  /* "Year" and its sort mark on one line */
  #library-filter .form { flex-wrap: wrap; }
  #library-filter .form > * { flex: 1 1 100% !important; min-width: 100% !important; }
}
"""
_SEARCH_HITS = 20


def stats_markdown(settings: Settings) -> str:
    st = rag.collection_stats(settings)
    when = dt.datetime.fromtimestamp(st.updated_at).strftime("%Y-%m-%d %H:%M") if st.updated_at else "–"
    return (
        f"**{st.papers:,} papers** · {st.chunks:,} chunks · {st.source_files if st.source_files is not None else '–'}"
        " source files · "
        f"embedding model {code_span(st.embedding_model)} · index {code_span(st.location)} · last change {when}"
    )


def _row(paper: Paper) -> list[Any]:
    meta = paper.metadata
    return [
        paper.title,
        year_of(meta),  # None, not "": a number column sorts only numbers
        authors_of(meta),
        ", ".join(paper.sources),
        meta.get("upvotes"),
    ]


def table(
    settings: Settings,
    query: str = "",
    full_text: bool = False,
    papers: list[Paper] | None = None,
    page: int = 0,
    where: rag.PaperFilter | None = None,
) -> tuple[list[list[Any]], list[str]]:
    """(rows, paper ids in row order) of the papers matching `query` (all of them when it is empty) that
    `where` admits.

    `papers`: the collection's papers when the caller has just read them. A collection of more
    than `settings.ui_table_rows` papers is never read whole: `page` selects that many of them in
    stored order, and a title filter stops at that many matches."""
    query = query.strip()
    if papers is None and library_for(settings).count() > settings.ui_table_rows:
        return _large_table(settings, query, full_text, page, where)
    papers = rag.indexed_papers(settings) if papers is None else papers
    if where is not None:
        papers = [p for p in papers if where.admits(p)]
    if query and full_text:
        by_id = {p.paper_id: p for p in papers}
        k = min(_SEARCH_HITS, max(1, len(papers)))
        hits = rag.search(query, k=k, settings=settings, where=where) if papers else []
        papers = [by_id[h.paper_id] for h in hits if h.paper_id in by_id]
    elif query:
        papers = [p for p in papers if query.casefold() in p.title.casefold()]
    return [_row(p) for p in papers], [p.paper_id for p in papers]


def _large_table(
    settings: Settings, query: str, full_text: bool, page: int, where: rag.PaperFilter | None
) -> tuple[list[list[Any]], list[str]]:
    if query and full_text:
        hits = rag.search(query, k=_SEARCH_HITS, settings=settings, where=where)
        by_id = {p.paper_id: p for p in rag.indexed_papers(settings, ids=[h.paper_id for h in hits])}
        papers = [by_id[h.paper_id] for h in hits if h.paper_id in by_id]
    elif query or where is not None:
        wanted = query.casefold()
        matching = (
            p
            for p in library_for(settings).iter_papers()
            if wanted in p.title.casefold() and (where is None or where.admits(p))
        )
        papers = list(itertools.islice(matching, settings.ui_table_rows))
    else:
        rows = settings.ui_table_rows
        papers = rag.indexed_papers(settings, offset=max(page, 0) * rows, limit=rows)
    return [_row(p) for p in papers], [p.paper_id for p in papers]


def pages_markdown(settings: Settings, page: int, query: str) -> str:
    """Which papers the table shows, for a collection too large to show whole (else nothing)."""
    total = library_for(settings).count()
    if total <= settings.ui_table_rows:
        return ""
    if query.strip():
        return f"*Showing the first matches among {total:,} papers.*"
    first = page * settings.ui_table_rows + 1
    last = min(first + settings.ui_table_rows - 1, total)
    return f"*Papers {first:,}–{last:,} of {total:,}, in the order they were added.*"


def abstract_markdown(paper: Paper) -> str:
    """The abstract panel: title, provenance with links, the abstract, the files it came from."""
    sources = escape(", ".join(paper.sources), links=False)
    origin = provenance(paper.metadata)
    head = f"#### {escape(paper.title, links=False)}" + (f"\n\n{origin}" if origin else "")
    return f"{head}\n\n{escape(paper.abstract)}\n\n*Source: {sources}*"


def _busy(lock: FileLock) -> bool:
    """Whether another writer (process or thread) holds the ingest lock right now."""
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return True
    lock.release()
    return False


def add_files(paths: list[str] | None, settings: Settings, max_mb: int) -> Iterator[str]:
    """Status messages while adding uploaded files: checks, waiting for another ingest, the result."""
    if not paths:
        yield format_error(f"Choose one or more {', '.join(ALLOWED)} files first.")
        return
    yield f"Checking {len(paths)} file(s)…"
    lock = library_for(settings).index.ingest_lock()
    try:
        with staged(paths, max_mb) as files:
            if _busy(lock):
                yield f"⏳ Another ingest is running; this one waits for it, then adds {len(files)} file(s)…"
            else:
                yield f"Adding {len(files)} file(s)…"
            try:
                report = rag.ingest(files, include_bundled=False, settings=settings, progress=True)
            except rag.CorpusError as exc:
                yield format_error(f"Nothing was added: {relative_message(str(exc), files[0].parent)}")
                return
            notes = [relative_message(note, files[0].parent) for note in report.notes]
    except (UploadError, rag.RagIndexError) as exc:
        yield format_error(f"Nothing was added: {exc}")
        return
    unchanged = report.papers - report.new_papers - report.updated_papers
    done = (
        f"✓ {report.new_papers} new, {report.updated_papers} updated, {unchanged} unchanged "
        f"({report.papers} papers in {report.seconds:.1f} s)"
    )
    yield "\n\n".join([done, *(format_error(note) for note in notes)])  # e.g. entries without an abstract


def discard_uploads(paths: list[str]) -> None:
    """Delete Gradio's copies of uploaded files (and their folders) once they were ingested or refused.

    Only files inside Gradio's upload folder are touched: a path from anywhere else is left alone.
    """
    cache = Path(get_upload_folder()).resolve()
    for raw in paths:
        path = Path(raw).resolve()
        if cache not in path.parents:
            continue
        path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # the folder still holds another file: keep it
            path.parent.rmdir()


def _choices(rows: list[list[Any]], paper_ids: list[str]) -> Any:
    """The remove picker's options: the papers the table shows, by title."""
    return gr.update(choices=[(row[0], pid) for row, pid in zip(rows, paper_ids, strict=True)], value=[])


def build_library_tab(settings: Settings, read_only: bool, max_mb: int) -> dict[str, Any]:
    """The tab's components (inside a `gr.Tab` the caller opened); `changed` fires after each write."""
    ids = gr.State([])
    stats = gr.Markdown(stats_markdown(settings), elem_id="library-stats")
    with gr.Row(elem_id="library-filter"):
        query = gr.Textbox(
            placeholder="Filter titles as you type",
            show_label=False,
            scale=6,
            min_width=200,
            elem_id="library-query",
        )
        full_text = gr.Checkbox(
            label="Full-text search (press Enter)", value=False, scale=1, min_width=170, elem_id="library-fulltext"
        )
    with gr.Accordion("Only papers… (years, author, source file, arXiv category; Enter applies)", open=False):
        only = filter_controls("library")
    rows, paper_ids = table(settings)
    grid = gr.Dataframe(
        value=rows,
        headers=COLUMNS,
        datatype=["str", "number", "str", "str", "number"],
        interactive=False,
        wrap=True,
        max_height=480,
        column_widths=["44%", "8%", "22%", "16%", "10%"],
        elem_id="library-table",
    )
    ids.value = paper_ids
    page = gr.State(0)
    # What the table holds; written when the page loads, with the table, so it never describes another page.
    shown = gr.Markdown("", elem_id="library-pages")
    with gr.Row(visible=library_for(settings).count() > settings.ui_table_rows) as pager:
        previous = gr.Button("← Previous", size="sm", scale=0, min_width=110, elem_id="library-previous")
        following = gr.Button("Next →", size="sm", scale=0, min_width=110, elem_id="library-next")
    abstract = gr.Markdown(
        "*Select a paper to read its abstract.*", elem_id="library-abstract", latex_delimiters=MATH_DELIMITERS
    )
    selected = gr.State("")  # the title of the paper whose abstract is shown
    selected_id = gr.State("")
    with gr.Row():
        ask_about = gr.Button(
            "Ask about this paper", visible=False, size="sm", elem_id="library-ask", scale=0, min_width=180
        )
        cite_one = gr.Button(
            "Cite this paper (BibTeX)", visible=False, size="sm", elem_id="library-cite-one", scale=0, min_width=200
        )
        cite_shown = gr.Button(
            "Cite the papers shown (BibTeX)", size="sm", elem_id="library-cite-shown", scale=0, min_width=230
        )
    bibtex = gr.Textbox(visible=False, elem_id="library-bibtex")

    def rows_for(q: str, fulltext: bool, at: int, boxes: tuple[str, ...]) -> tuple[list[list[Any]], list[str], str]:
        """The table's rows, their ids and the note above the pager, for the query and the filter boxes."""
        try:
            where = where_from(*boxes)
            rows, pids = table(settings, q, fulltext, page=at, where=where)
        except (ValueError, rag.RagIndexError) as exc:
            raise gr.Error(escape(str(exc), links=False)) from None
        # A filter counts as a query for the pager: a large collection shows its first matches.
        pager = pages_markdown(settings, at, q or (where.describe() if where else ""))
        return rows, pids, " ".join(n for n in (filter_note(where), pager) if n)

    def refresh(q: str, fulltext: bool, *boxes: str, at: int = 0) -> tuple[Any, list[str], int, str]:
        rows, pids, note = rows_for(q, fulltext, at, boxes)
        return gr.update(value=rows), pids, at, note

    def turn(q: str, fulltext: bool, at: int, step: int, *boxes: str) -> tuple[Any, list[str], int, str]:
        last = max(0, (library_for(settings).count() - 1) // settings.ui_table_rows)
        paging = not q.strip() and not any(b.strip() for b in boxes)
        return refresh(q, fulltext, *boxes, at=min(max(at + step, 0), last) if paging else 0)

    def typed(q: str, fulltext: bool, *boxes: str) -> Any:
        """The title filter follows each keystroke; a full-text search waits for Enter (it ranks abstracts)."""
        return (gr.skip(),) * 4 if fulltext else refresh(q, fulltext, *boxes)

    shown_table = [grid, ids, page, shown]
    asked = [query, full_text, *only]
    query.submit(refresh, asked, shown_table)
    query.input(typed, asked, shown_table, trigger_mode="always_last")
    full_text.change(refresh, asked, shown_table)
    for box in only:
        box.submit(refresh, asked, shown_table)
    previous.click(lambda q, f, at, *b: turn(q, f, at, -1, *b), [query, full_text, page, *only], shown_table)
    following.click(lambda q, f, at, *b: turn(q, f, at, 1, *b), [query, full_text, page, *only], shown_table)

    def show(pids: list[str], evt: gr.SelectData) -> tuple[str, str, str, Any, Any]:
        row = evt.index[0] if isinstance(evt.index, list | tuple) else evt.index
        paper = library_for(settings).papers([pids[row]]) if 0 <= row < len(pids) else []
        if not paper:
            hidden = gr.update(visible=False)
            return "*This paper is no longer in the collection.*", "", "", hidden, hidden
        p = paper[0]
        return abstract_markdown(p), p.title, p.paper_id, gr.update(visible=True), gr.update(visible=True)

    def cite(pids: list[str]) -> str:
        """BibTeX for these papers, in the table's order (a removed one is left out)."""
        found = {p.paper_id: p for p in library_for(settings).papers(pids)} if pids else {}
        return rag.to_bibtex(found[pid] for pid in pids if pid in found)

    grid.select(show, [ids], [abstract, selected, selected_id, ask_about, cite_one], show_progress="hidden")
    cite_one.click(lambda pid: cite([pid] if pid else []), [selected_id], [bibtex]).then(
        None, [bibtex], None, js=save_js("bib", "paper")
    )
    cite_shown.click(cite, [ids], [bibtex]).then(None, [bibtex], None, js=save_js("bib", "papers"))
    parts: dict[str, Any] = {"stats": stats, "grid": grid, "ids": ids, "query": query, "full_text": full_text}
    parts.update(ask_about=ask_about, selected=selected)

    def on_load() -> tuple[str, Any, list[str], Any, int, str]:
        rows, pids = table(settings)
        large = library_for(settings).count() > settings.ui_table_rows
        return (
            stats_markdown(settings),
            gr.update(value=rows),
            pids,
            gr.update(visible=large),
            0,
            pages_markdown(settings, 0, ""),
        )

    parts["load"] = (on_load, [stats, grid, ids, pager, page, shown])  # a new page shows the collection as it is now
    if read_only:
        gr.Markdown("*This app is read-only: papers cannot be added or removed here.*", elem_id="library-read-only")
        return parts

    with gr.Accordion("Add papers", open=True):
        files = gr.File(
            file_count="multiple", file_types=list(ALLOWED), label="JSONL, CSV, listing .txt, BibTeX, RIS or CSL-JSON",
            elem_id="library-upload",
        )  # fmt: skip
        add = gr.Button("Add to collection", variant="primary", elem_id="library-add")
        status = gr.Markdown(elem_id="library-status")
    with gr.Accordion("Remove papers", open=False):
        choose = gr.Dropdown(
            choices=[(r[0], pid) for r, pid in zip(rows, paper_ids, strict=True)],  # the papers the table shows
            multiselect=True,
            label="Papers to remove (a removed bundled paper comes back with the command rag ingest)",
            elem_id="library-remove-choice",
        )
        remove = gr.Button("Remove selected", variant="secondary", elem_id="library-remove")
        with gr.Row(visible=False) as confirm_row:
            confirm_text = gr.Markdown(elem_id="library-confirm-text")
            confirm = gr.Button("Yes, remove them", variant="stop", elem_id="library-confirm")
            cancel = gr.Button("Cancel", elem_id="library-cancel")
        removed = gr.Markdown(elem_id="library-removed")

    def after_write(q: str, fulltext: bool, at: int, *boxes: str) -> tuple[str, Any, list[str], Any, str]:
        rows, pids, note = rows_for(q, fulltext, at, boxes)
        return stats_markdown(settings), gr.update(value=rows), pids, _choices(rows, pids), note

    def run_add(
        paths: list[str] | None,
        progress: gr.Progress = gr.Progress(track_tqdm=True),  # noqa: B008 (how Gradio injects progress)
    ) -> Iterator[str]:
        try:
            yield from add_files(paths, settings, max_mb)
        finally:
            discard_uploads(paths or [])

    added = add.click(run_add, [files], [status], concurrency_limit=None)
    written = [stats, grid, ids, choose, shown]
    added.then(after_write, [query, full_text, page, *only], written).then(lambda: None, None, [files])

    def ask_confirm(chosen: list[str] | None) -> tuple[Any, str]:
        if not chosen:
            return gr.update(visible=False), ""
        titles = [p.title for p in rag.indexed_papers(settings, ids=chosen)]
        named = "\n".join(f"- {escape(t, links=False)}" for t in titles[:10])
        more = f"\n- … and {len(titles) - 10} more" if len(titles) > 10 else ""
        count = "this paper" if len(titles) == 1 else f"these {len(titles)} papers"
        return gr.update(visible=True), f"Remove {count} from the collection?\n\n{named}{more}"

    remove.click(ask_confirm, [choose], [confirm_row, confirm_text])
    cancel.click(lambda: (gr.update(visible=False), ""), None, [confirm_row, confirm_text])

    def run_remove(chosen: list[str] | None) -> tuple[Any, str]:
        try:
            n = rag.remove_papers(chosen or [], settings=settings)
        except rag.RagIndexError as exc:
            return gr.update(visible=False), format_error(str(exc))
        return gr.update(visible=False), f"✓ Removed {n} paper{'s' if n != 1 else ''}."

    parts["load_choices"] = (lambda: _choices(*table(settings)), [choose])
    done = confirm.click(run_remove, [choose], [confirm_row, removed])
    done.then(after_write, [query, full_text, page, *only], written)
    parts.update(add=added, removed=done)
    return parts
