"""The "only papers …" controls shared by the chat and the Library: years, author, source file, arXiv category.

A thin layer over `rag.PaperFilter`: the boxes hold text as typed, `where_from` turns it into a filter (a
ValueError saying what to fix for a bad year range), and `filter_note` says on screen what an answer or a table
was limited to.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

import rag
from rag.index.filters import parse_years

from .format import escape


def filter_controls(prefix: str) -> list[Any]:
    """Four boxes in a row (elem ids `<prefix>-years`, `-author`, `-source`, `-category`), empty: no filter."""
    with gr.Row(elem_id=f"{prefix}-filters"):
        # value="": an API call may leave a box out (Gradio makes a parameter optional when its box has a value).
        years = gr.Textbox(
            value="",
            label="Years",
            placeholder="2022-  or  2019-2021",
            elem_id=f"{prefix}-years",
            min_width=140,
            scale=1,
        )
        author = gr.Textbox(value="", label="Author (surname)", elem_id=f"{prefix}-author", min_width=140, scale=1)
        source = gr.Textbox(value="", label="Source file", elem_id=f"{prefix}-source", min_width=140, scale=1)
        category = gr.Textbox(
            value="", label="arXiv category", placeholder="cs.LG", elem_id=f"{prefix}-category", min_width=140, scale=1
        )
    return [years, author, source, category]


def where_from(years: str, author: str, source: str, category: str) -> rag.PaperFilter | None:
    """The filter the boxes describe (None when they are empty); ValueError for a year range it cannot read."""
    first, last = parse_years(years) if years and years.strip() else (None, None)
    made = rag.PaperFilter(first, last, author or None, source or None, category or None)
    return made if made.active else None


def filter_note(where: rag.PaperFilter | None) -> str:
    """ "*Only papers: from 2022 · author Hinton*" for a filtered answer or table ("" without a filter)."""
    return f"*Only papers: {escape(where.describe(), links=False)}*" if where is not None else ""
