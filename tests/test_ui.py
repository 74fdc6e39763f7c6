"""The UI layer in-process: safe formatting and the chat handler (history in, stream and sources out)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from rag.ui.app import respond
from rag.ui.format import MATH_DELIMITERS, escape, format_answer

from rag.config import Settings
from rag.types import Answer, Citation, DroppedCitation, Hit

XSS = '<img src=x onerror="window.__xss=1"><script>alert(1)</script> [click](javascript:alert(1))'


def test_escape_neutralises_html_and_markdown() -> None:
    out = escape(XSS + " $x$ **bold**")
    assert "<" not in out and ">" not in out
    assert "](" not in out and "\\*\\*bold\\*\\*" in out
    assert "\\$x\\$" in escape("A title with $x$", links=False)  # titles: no math


MATH = MATH_DELIMITERS[0]


@pytest.mark.parametrize(
    ("text", "latex"),
    [
        ("we get $O(\\sqrt{n})$ regret", "O(\\sqrt{n})"),
        ("and $$x^2$$.", "x^2"),
        ("as w_{min}=max(d_x+1,d_y)+1_{d_y=d_x+1}, which", "w_{min}=max(d_x+1,d_y)+1_{d_y=d_x+1}"),
        ("(see R^{d_x}).", "R^{d_x}"),
    ],
)
def test_latex_in_prose_is_passed_to_katex_verbatim_between_the_math_delimiters(text: str, latex: str) -> None:
    assert f"{MATH['left']}{latex}{MATH['right']}" in escape(text)
    assert MATH["left"] not in escape(text, links=False)  # titles: no math


@pytest.mark.parametrize(
    "text",
    [
        "costs $5 and $10 in all",  # money, not math
        "a snake_case name",
        "$<img src=x onerror=alert(1)>$",  # markup never goes to KaTeX
        "$a<b$",
        "between $ x$ and",  # a space after the opening "$"
        f"forged {MATH['left']}x^2{MATH['right']} delimiters",  # removed with the other invisible characters
    ],
)
def test_what_is_not_math_stays_as_written(text: str) -> None:
    assert MATH["left"] not in escape(text) and MATH["right"] not in escape(text)
    assert "<" not in escape(text)


def answer(**kw: object) -> Answer:
    hits = [Hit("p1", "Paper One", "Paper One\ntext", 0.1), Hit("p2", "Paper <b>Two</b>", "x", 0.05)]
    base: dict[str, object] = {
        "text": "Claim one [1].",
        "citations": [Citation("Paper One", "p1", "Evidence sentence.", "Full abstract " + XSS)],
        "abstained": False,
        "sources": hits,
        "backend": "extractive",
        "timings": {"retrieval": 0.01, "generation": 0.02},
    }
    base.update(kw)
    return Answer(**base)  # type: ignore[arg-type]


def test_answer_message_has_numbered_sources_also_retrieved_and_expandable_abstracts() -> None:
    main, abstract = format_answer(answer())
    assert "Claim one \\[1\\]" in main["content"]
    assert "1. **Paper One** — “Evidence sentence.”" in main["content"]
    assert "**Also retrieved** (not cited)" in main["content"] and "Paper &lt;b&gt;Two&lt;/b&gt;" in main["content"]
    assert "answered by offline quotes in" in main["content"]
    assert abstract["metadata"]["title"] == "\\[1\\] Full abstract: Paper One"  # Markdown-escaped, shows "[1]"
    assert "<img" not in abstract["content"] and "<script" not in abstract["content"]


def test_each_citation_shows_its_provenance_with_links_that_go_where_they_say() -> None:
    meta = {
        "authors": "Vaswani, Ashish; Shazeer, Noam; Parmar, Niki; Uszkoreit, Jakob",
        "year": 2017,
        "venue": "NeurIPS *2017*",
        "arxiv_id": "1706.03762",
        "url": "javascript:alert(1)",
    }
    cited = Citation("Paper One", "p1", "Evidence sentence.", "Abstract.", meta, ("mine.bib",))
    main, abstract = format_answer(answer(citations=[cited]))
    origin = "Ashish Vaswani, Noam Shazeer, Niki Parmar et al. · 2017 · NeurIPS \\*2017\\* · <https://arxiv.org/abs/1706.03762>"
    assert f"1. **Paper One** — “Evidence sentence.”  \n   {origin}" in main["content"]
    assert abstract["content"].startswith(origin) and "javascript" not in main["content"] + abstract["content"]
    bundled = Citation(
        "Paper One", "p1", "Evidence sentence.", "Abstract.", {"authors_count": 3, "date": "Feb 6, 2023"}
    )
    assert "“Evidence sentence.”  \n   3 authors · 2023" in format_answer(answer(citations=[bundled]))[0]["content"]


def test_the_full_abstract_shows_the_quoted_evidence_in_bold() -> None:
    abstract = "We study ReLU nets. The minimum width is exactly max{d_x, d_y, 2} here. It is tight."
    cited = Citation("Paper One", "p1", "The minimum width is exactly max{d_x, d_y, 2} here.", abstract)
    _, full = format_answer(answer(citations=[cited]))
    assert full["content"].endswith(
        "We study ReLU nets. **The minimum width is exactly max\\{d\\_x, d\\_y, 2\\} here.** It is tight."
    )


def test_abstention_shows_closest_papers_and_no_sources() -> None:
    (main,) = format_answer(answer(text="The collection does not answer this.", citations=[], abstained=True))
    assert "**Closest papers**" in main["content"] and "**Sources**" not in main["content"]


def test_dropped_and_unsupported_are_warned_never_listed_as_sources() -> None:
    (main, _) = format_answer(answer(dropped_citations=[DroppedCitation("Attention Is All You Need", "not among")]))
    assert "removed citations" in main["content"]
    sources_part = main["content"].split("**Sources**")[1].split("**Also retrieved**")[0]
    assert "Attention" not in sources_part


def test_chat_handler_streams_then_shows_sources_and_keeps_history(bundled_settings: Settings) -> None:
    updates = list(respond("What are emergent abilities of large language models?", [], [], 5, bundled_settings))
    assert len(updates) >= 3  # the question, streamed text, the final answer
    box, chat, history = updates[-1]
    assert box == ""
    assert chat[0]["role"] == "user" and "Emergent Abilities of Large Language Models" in chat[1]["content"]
    assert "**Sources**" in chat[1]["content"]
    assert [t["role"] for t in history] == ["user", "assistant"]

    follow = list(respond("How does it compare with scaling laws?", chat, history, 5, bundled_settings))
    _, chat2, history2 = follow[-1]
    assert len(history2) == 4 and chat2[: len(chat)] == chat


@pytest.mark.parametrize("question", ["", "   "])
def test_bad_question_is_a_readable_message_not_a_traceback(bundled_settings: Settings, question: str) -> None:
    _, chat, history = list(respond(question, [], [], 5, bundled_settings))[-1]
    assert chat[-1]["content"].startswith("⚠") and "question is empty" in chat[-1]["content"]
    assert "Traceback" not in chat[-1]["content"] and history == []


def test_unreachable_backend_is_a_readable_message(bundled_settings: Settings) -> None:
    broken = bundled_settings.with_overrides(openai_base_url="http://127.0.0.1:9/v1", llm_max_retries=0, llm_timeout=5)
    _, chat, _ = list(respond("What is a lottery ticket?", [], [], 5, broken))[-1]
    assert "unreachable" in chat[-1]["content"] and "OPENAI\\_BASE\\_URL" in chat[-1]["content"]


def test_escape_keeps_apostrophes_and_quotes_readable() -> None:
    out = escape('a transformer\'s "soft" prompt & more')
    assert "&#" not in out and "'" in out and '"' in out and "&amp;" in out


def test_titles_are_escaped_in_the_collapsible_headers_and_never_linked() -> None:
    hostile = '<div style="position:fixed">x</div><a href="https://evil.example/p">y</a> https://evil.example/q'
    main, abstract = format_answer(answer(citations=[Citation(hostile, "p1", "Evidence.", "Abstract.")]))
    title = abstract["metadata"]["title"]
    assert "<div" not in title and "<a" not in title and "&lt;div" in title
    assert "https://" not in title and "https:\\/\\/evil" in title  # breaks the autolinker: shown as text
    assert "<https://" not in main["content"]


def test_control_characters_never_reach_the_page(bundled_settings: Settings) -> None:
    updates = list(respond("lottery\x00 ticket \x1b[31m red\x07", [], [], 3, bundled_settings))
    shown = json.dumps([m["content"] for m in updates[-1][1]])
    assert "\\u0000" not in shown and "\\u001b" not in shown and "\\u0007" not in shown


def test_bare_urls_link_to_exactly_what_they_show() -> None:
    text = escape("Code (https://example.com/a_b-c). See https://x.org/p?q=1, or www.example.org.")
    assert "\\(<https://example.com/a_b-c>\\)." in text
    assert "<https://x.org/p?q=1>," in text
    assert "<" + "www" not in text and "www\\.example" in text  # not auto-linked with a stray backslash


def test_every_example_question_gets_a_cited_answer(bundled_settings: Settings) -> None:
    """The examples are the first thing a new user clicks: none may abstain."""
    from rag.ui.app import EXAMPLES

    import rag

    for question in EXAMPLES:
        answer = rag.ask(question, settings=bundled_settings)
        assert not answer.abstained and answer.citations, question


def test_export_lists_questions_answers_and_numbered_references_with_source_files() -> None:
    from rag.ui.export import conversation_markdown

    history = [
        {"role": "user", "content": "What is a lottery ticket?"},
        {
            "role": "assistant",
            "content": "A subnetwork [1]. (cited: Paper One)",
            "text": "A subnetwork [1].",
            "citations": [
                {
                    "title": "Paper One",
                    "paper_id": "p1",
                    "evidence": "We find subnetworks.",
                    "sources": ["mine.jsonl"],
                    "metadata": {
                        "authors": "Frankle, Jonathan; Carbin, Michael",
                        "year": 2019,
                        "arxiv_id": "1803.03635",
                    },
                }
            ],
        },
        {"role": "user", "content": "And\x07 later?"},
        {"role": "assistant", "content": "The collection does not answer this."},
    ]
    md = conversation_markdown(history)
    assert "## 1. What is a lottery ticket?" in md and "A subnetwork \\[1\\]." in md  # shows as [1]
    assert (
        "1. *Paper One* — “We find subnetworks.” (Jonathan Frankle, Michael Carbin · 2019 · "
        "<https://arxiv.org/abs/1803.03635> · source file: mine.jsonl)"
    ) in md
    assert "## 2. And later?" in md and "The collection does not answer this." in md and "\x07" not in md


def test_stop_marks_only_a_streaming_answer() -> None:
    from rag.ui.app import STOPPED, mark_stopped

    streaming = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "Half an answer ▍"}]
    assert mark_stopped(streaming)[-1]["content"] == f"Half an answer\n\n{STOPPED}"
    done = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "A full answer."}]
    assert mark_stopped(done) == done


def test_stop_before_the_first_word_is_marked_too() -> None:
    from rag.ui.app import STOPPED, mark_stopped

    waiting = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "…"}]
    assert mark_stopped(waiting)[-1]["content"] == STOPPED


def test_a_stopped_stream_ends_itself_marked_closes_the_model_stream_and_keeps_no_turn(
    monkeypatch: pytest.MonkeyPatch, bundled_settings: Settings
) -> None:
    from rag.ui.app import STOPPED, StopRequests, respond

    import rag

    closed: list[bool] = []

    def writing(*args: object, **kwargs: object) -> Iterator[str]:
        try:
            yield from ["Half ", "an ", "answer ", "and ", "more"]
        finally:
            closed.append(True)

    monkeypatch.setattr(rag, "ask_stream", writing)
    stops = StopRequests()
    updates = []
    for update in respond("q", [], [], 5, bundled_settings, stopped=lambda: stops.seen("s1")):
        updates.append(update)
        if "an " in str(update[1][-1]["content"]):
            stops.press("s1")
            stops.press("another session")  # is not this stream's
    _, chat, history = updates[-1]
    assert chat[-1]["content"] == f"Half an\n\n{STOPPED}" and history == [] and closed == [True]
    assert not stops.seen("s1") and stops.seen("another session")


def test_stop_reads_messages_in_either_shape_gradio_returns() -> None:
    from rag.ui.app import STOPPED, mark_stopped

    parts = [{"role": "assistant", "content": [{"type": "text", "text": "Half ▍"}]}]
    assert mark_stopped(parts)[-1]["content"] == f"Half\n\n{STOPPED}"


def test_a_rewritten_search_is_shown_and_a_standalone_one_is_not() -> None:
    (main, _) = format_answer(answer(question="What does it assume?", standalone_question="What does it assume? (P)"))
    assert main["content"].startswith("*Searched for: “What does it assume? \\(P\\)”*")
    (plain, _) = format_answer(answer(question="What is it?", standalone_question="What is it?"))
    assert "Searched for" not in plain["content"]
    (strong, _) = format_answer(answer(support="strong", confidence=0.93))
    assert "strong support (93%)" in strong["content"]


def test_the_conversation_carries_cited_ids_and_a_rewritten_question_can_be_asked_anew(
    bundled_settings: Settings,
) -> None:
    from rag.ui.app import rewritten_question

    _, chat, history = list(respond("How can quantized LLMs be fine-tuned without storing gradients?", [], [], 5,
                                    bundled_settings))[-1]  # fmt: skip
    assert history[1]["cited"] and history[1]["cited"] == [c["paper_id"] for c in history[1]["citations"]]
    assert rewritten_question(history) is None  # asked as typed
    _, chat, history = list(respond("What memory does it save?", chat, history, 5, bundled_settings))[-1]
    assert history[3]["searched"].startswith("What memory does it save? (")
    assert rewritten_question(history) == "What memory does it save?"
    assert any("Searched for: “What memory does it save? \\(" in str(m["content"]) for m in chat)
    _, chat, history = list(respond("What memory does it save?", chat, history, 5, bundled_settings, True))[-1]
    assert history[-1]["searched"] == "What memory does it save?"  # as typed, without the conversation


def test_an_address_like_label_or_title_is_not_turned_into_a_mail_link() -> None:
    """Gradio's Markdown links "name@host.tld": a local model's label "qwen2.5-1.5b@127.0.0.1:57291" was one."""
    import html

    text = "answered by qwen2.5-1.5b@127.0.0.1:57291; write to ada@example.org"
    shown = escape(text, links=False)
    assert "@" not in shown  # nothing for the autolinker to find
    assert html.unescape(shown).replace("\\", "") == text
