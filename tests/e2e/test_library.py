"""The Library tab in a real browser: upload → ask, a malformed upload, removal, sessions, read-only mode."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import rag
from rag.config import Settings
from rag.ingest.formats import parse_file
from rag.provenance import year_of
from tests.e2e.browser import ANSWERS_JS, CHROMIUM, ask, chat_page, open_chat
from tests.helpers import free_port, serving

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
NEW_TITLE = "Capybara Committees Reach Consensus Faster Than Gradient Descent"
NEW_ABSTRACT = (
    "We study committees of capybaras that vote on the next step of an optimiser. "
    "Capybara committees reach consensus in fewer rounds than gradient descent needs steps on convex problems."
)
HOSTILE_TITLE = '<img src=x onerror="window.__xss=7"> Markup Titles in Uploaded Listings'
HOSTILE_ABSTRACT = "We upload a listing whose title carries markup, to check that the library table shows it as text."

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium on this machine (scripts/test.sh installs it)")


def _serve(bundled_settings: Settings, folder: Path, *flags: str, **env_overrides: str) -> Iterator[str]:
    """The app on its own index copy, with its own temp folder (`folder/tmp`) and Gradio cache (`folder/gradio`)."""
    index_dir = folder / "index"
    shutil.copytree(bundled_settings.index_dir, index_dir)
    (folder / "tmp").mkdir()
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    env = {"RAG_INDEX_DIR": str(index_dir), "TMPDIR": str(folder / "tmp"), "GRADIO_TEMP_DIR": str(folder / "gradio")}
    with serving(["ui", "--port", str(port), *flags], url, env | env_overrides, 120):
        yield url


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


@pytest.fixture(scope="module")
def library_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("library")


@pytest.fixture(scope="module")
def library_url(bundled_settings: Settings, library_folder: Path) -> Iterator[str]:
    yield from _serve(bundled_settings, library_folder)


@pytest.fixture(scope="module")
def read_only_url(bundled_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from _serve(bundled_settings, tmp_path_factory.mktemp("read-only"), "--read-only")


@pytest.fixture
def page(library_url: str) -> Iterator[Any]:
    with chat_page(library_url) as pg:
        yield pg


def _library(page: Any) -> None:
    page.get_by_role("tab", name="Library").click()
    page.wait_for_selector("#library-table", timeout=30_000)


def _papers(page: Any) -> int:
    """The paper count in the stats header, once no update of it is pending."""
    page.wait_for_function("() => /^\\d+ papers/.test(document.querySelector('#library-stats').innerText.trim())")
    text = page.locator("#library-stats").inner_text().strip()
    return int(re.match(r"(\d+) papers", text).group(1))  # type: ignore[union-attr]


def _upload(page: Any, *files: Path) -> str:
    # After an upload the control is emptied: wait for that before choosing the next files.
    page.wait_for_function("() => document.querySelector('#library-upload').innerText.includes('Drop File Here')")
    page.locator("#library-upload input[type=file]").set_input_files([str(f) for f in files])
    page.wait_for_timeout(500)
    status = page.locator("#library-status")
    before = status.inner_text()
    page.locator("#library-add").click()
    page.wait_for_function(  # a new result, not the previous one under a pending timer
        "prev => { const t = document.querySelector('#library-status').innerText;"
        " return t !== prev && /^\\s*(✓|⚠)/.test(t); }",
        arg=before,
        timeout=120_000,
    )
    return str(status.inner_text())


def test_upload_then_ask_cites_the_new_paper(page: Any, tmp_path: Path, library_folder: Path) -> None:
    _library(page)
    before = _papers(page)
    upload = tmp_path / "capybara.jsonl"
    lines = [{"title": NEW_TITLE, "abstract": NEW_ABSTRACT}, {"title": HOSTILE_TITLE, "abstract": HOSTILE_ABSTRACT}]
    upload.write_text("".join(json.dumps(x) + "\n" for x in lines))
    status = _upload(page, upload)
    assert "2 new, 0 updated, 0 unchanged" in status, status
    # The uploaded original is deleted from Gradio's cache once ingested (and the staged copy with its folder).
    assert "capybara.jsonl" not in _files(library_folder / "gradio")
    assert _files(library_folder / "tmp") == []
    page.wait_for_function(f"() => document.querySelector('#library-stats').innerText.startsWith('{before + 2} ')")
    assert f"{before + 2} papers" in page.locator("#header").inner_text()  # the chat header follows

    page.locator("#library-query").locator("textarea, input").first.fill("Markup Titles")
    page.locator("#library-query").locator("textarea, input").first.press("Enter")
    page.wait_for_function("() => document.querySelector('#library-table').innerText.includes('Markup Titles')")
    assert "<img src=x" in page.locator("#library-table").inner_text()  # shown as text, not an image
    assert page.evaluate("() => window.__xss") is None
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "ui-library.png"), full_page=True)

    page.get_by_role("tab", name="Chat").click()
    ask(page, "Do capybara committees reach consensus faster than gradient descent?")
    sources = page.locator("#chat").inner_text().split("Sources")[-1]
    assert NEW_TITLE in sources


def test_a_malformed_upload_changes_nothing_and_says_where(page: Any, tmp_path: Path) -> None:
    _library(page)
    before = _papers(page)
    bad = tmp_path / "broken.jsonl"
    bad.write_text(json.dumps({"title": "Fine Paper About Otters", "abstract": "Otters. " * 10}) + "\n{not json\n")
    status = _upload(page, bad)
    assert "Nothing was added" in status and "broken.jsonl:2" in status, status
    assert "rag-upload-" not in status  # the private folder is not shown
    assert _papers(page) == before
    hostile = tmp_path / "hostile.csv"
    hostile.write_text('<img src=x onerror="window.__xss=9">,abstract\nA title,An abstract\n')
    status = _upload(page, hostile)
    assert "hostile.csv:1" in status and '<img src=x onerror="window.__xss=9">' in status  # shown as text
    assert page.evaluate("() => window.__xss") is None
    binary = tmp_path / "image.csv"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00")
    status = _upload(page, binary)
    assert "binary file" in status and _papers(page) == before


def test_an_upload_during_another_ingest_waits_and_says_so(page: Any, library_folder: Path, tmp_path: Path) -> None:
    from filelock import FileLock

    _library(page)
    upload = tmp_path / "otters.jsonl"
    upload.write_text(json.dumps({"title": "Sea Otters Hold Hands While Sleeping", "abstract": "Otters. " * 12}) + "\n")
    other_writer = FileLock(str(library_folder / "index" / ".ingest.lock"))
    with other_writer:  # another process is ingesting
        page.wait_for_function("() => document.querySelector('#library-upload').innerText.includes('Drop File Here')")
        page.locator("#library-upload input[type=file]").set_input_files([str(upload)])
        page.wait_for_timeout(500)
        page.locator("#library-add").click()
        page.wait_for_function("() => document.querySelector('#library-status').innerText.includes('waits')")
        page.wait_for_timeout(1000)
        assert "new" not in page.locator("#library-status").inner_text()  # still waiting
    page.wait_for_function("() => document.querySelector('#library-status').innerText.includes('1 new')")


def test_remove_asks_first_and_the_paper_is_no_longer_retrieved(page: Any) -> None:
    _library(page)
    before = _papers(page)
    page.locator("#library-remove-choice").locator("..").locator("..").page.get_by_text("Remove papers").click()
    choice = page.locator("#library-remove-choice input")
    choice.fill("YOLOv4")
    page.get_by_role("option", name="YOLOv4: Optimal Speed and Accuracy of Object Detection").click()
    page.locator("#library-remove").click()
    page.wait_for_selector("#library-confirm", state="visible")
    assert _papers(page) == before  # nothing happens before the confirmation
    confirm = page.locator("#library-confirm-text").inner_text()
    assert "Remove this paper from the collection?" in confirm and "YOLOv4: Optimal Speed and Accuracy" in confirm
    page.locator("#library-confirm").click()
    page.wait_for_function("() => document.querySelector('#library-removed').innerText.includes('Removed 1')")
    page.wait_for_function(f"() => document.querySelector('#library-stats').innerText.startsWith('{before - 1} ')")
    page.get_by_role("tab", name="Chat").click()
    ask(page, "Which object detector combines weighted residual connections and Mish activation?")
    assert "YOLOv4: Optimal Speed" not in page.locator("#chat").inner_text().split("Sources")[-1]


def test_export_downloads_the_conversation_as_markdown_and_leaves_no_file(page: Any, library_folder: Path) -> None:
    ask(page, "What are emergent abilities of large language models?")
    ask(page, "Which papers are about lottery tickets in neural networks?")
    page.wait_for_function("() => !document.querySelector('#export').disabled")
    # Answers alone write nothing: no export folder in $TMPDIR, no conversation in Gradio's cache.
    assert not any(name.endswith(".md") for name in _files(library_folder / "tmp") + _files(library_folder / "gradio"))
    with page.expect_download() as download:
        page.locator("#export").click()
    assert re.fullmatch(r"conversation-\d{8}-\d{6}\.md", download.value.suggested_filename)
    text = Path(download.value.path()).read_text(encoding="utf-8")
    assert text.startswith("# Ask the papers: conversation")
    assert "## 1. What are emergent abilities of large language models?" in text
    assert "1. *Emergent Abilities of Large Language Models* — “" in text and " · source file: " in text
    assert "## 2. Which papers are about lottery tickets in neural networks?" in text
    assert not any(name.endswith(".md") for name in _files(library_folder / "tmp") + _files(library_folder / "gradio"))


def test_cite_downloads_the_cited_papers_as_bibtex_that_reads_back(page: Any, library_folder: Path) -> None:
    assert page.locator("#cite").is_disabled()  # nothing cited yet
    ask(page, "Which papers are about lottery tickets in neural networks?")
    page.wait_for_function("() => !document.querySelector('#cite').disabled")
    cited = page.locator("#chat").inner_text().split("Sources")[1].split("answered by")[0]
    with page.expect_download() as download:
        page.locator("#cite").click()
    assert re.fullmatch(r"conversation-\d{8}-\d{6}\.bib", download.value.suggested_filename)
    saved = Path(download.value.path())
    back = parse_file(saved.rename(saved.with_suffix(".bib")))
    assert back and all(r.title in cited for r in back) and all(r.abstract for r in back)
    assert not any(name.endswith(".bib") for name in _files(library_folder / "tmp") + _files(library_folder / "gradio"))


GODEL = "The Gödel Machine: Self-Referential Learners That Rewrite Their Own Code"


def test_a_zotero_export_is_uploaded_then_filtered_in_the_library_and_the_chat(page: Any) -> None:
    _library(page)
    status = _upload(page, Path(__file__).parents[1] / "data" / "zotero.bib")
    assert "2 new" in status, status  # the entry without an abstract is skipped
    page.get_by_text("Only papers…").first.click()
    author = page.locator("#library-author textarea, #library-author input").first
    author.fill("muller")
    author.press("Enter")
    page.wait_for_function("() => document.querySelector('#library-pages').innerText.includes('author muller')")
    table = page.locator("#library-table").inner_text()
    assert "The Gödel Machine" in table and "Sparse Capybara Networks" not in table and "YOLOv4" not in table
    page.locator("#library-table [data-testid='cell-0-0']").click()
    abstract = page.locator("#library-abstract")
    page.wait_for_function("() => document.querySelector('#library-abstract').innerText.includes('Anna Müller')")
    assert "Anna Müller, John Smith, Piet van der Berg · 2021 · Journal of Machine Learning Research" in (
        abstract.inner_text()
    )
    assert abstract.locator("a[href='https://arxiv.org/abs/2101.00001']").count() == 1  # goes where it says
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "ui-library-filtered.png"), full_page=True)
    # Cite the selected row, then every row the filter shows: BibTeX that reads back with its metadata.
    for button, name in (("#library-cite-one", "paper"), ("#library-cite-shown", "papers")):
        with page.expect_download() as download:
            page.locator(button).click()
        assert re.fullmatch(name + r"-\d{8}-\d{6}\.bib", download.value.suggested_filename)
        saved = Path(download.value.path())
        back = parse_file(saved.rename(saved.with_suffix(".bib")))
        titles = [r.title for r in back]
        rows = page.locator("#library-table tbody tr").count()
        assert titles == [GODEL] if name == "paper" else (len(titles) == rows and GODEL in titles)
        godel = back[titles.index(GODEL)]
        assert year_of(godel.metadata) == 2021 and "Müller" in str(godel.metadata.get("authors"))

    page.get_by_role("tab", name="Chat").click()
    page.get_by_text("Settings").first.click()
    chat_author = page.locator("#chat-author textarea, #chat-author input").first
    chat_author.fill("Nguyen")
    chat_author.press("Tab")  # as a user leaves the box; under load the accordion may still be rendering
    page.wait_for_function(
        "() => document.querySelector('#chat-author textarea, #chat-author input').value === 'Nguyen'"
    )
    ask(page, "Which networks keep most of their accuracy with a tenth of the weights?")
    answer = page.locator("#chat").inner_text()
    assert "Only papers: author Nguyen" in answer
    sources = answer.split("Sources")[1].split("answered by")[0]
    assert "Sparse Capybara Networks" in sources and "Văn An Nguyễn · 2023" in sources
    assert "Also retrieved" not in answer  # the filter admits one paper


def test_each_cited_paper_has_a_copy_button_for_its_title_and_evidence(page: Any, library_url: str) -> None:
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=library_url.rstrip("/"))
    ask(page, "What are emergent abilities of large language models?")
    page.get_by_text("[1] Full abstract").first.click()
    page.locator("#chat button.copy_code_button").first.click()  # the citation's block
    copied = page.evaluate("() => navigator.clipboard.readText()")
    assert copied.startswith("Emergent Abilities of Large Language Models — “") and "emergent" in copied[50:]


def test_two_sessions_keep_their_own_conversations(library_url: str) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser_a, page_a = open_chat(p, library_url)
        browser_b, page_b = open_chat(p, library_url)
        ask(page_a, "What are emergent abilities of large language models?")
        ask(page_b, "How can quantized LLMs be fine-tuned without storing gradients?")
        chat_a, chat_b = page_a.locator("#chat").inner_text(), page_b.locator("#chat").inner_text()
        assert "emergent abilities" in chat_a and "quantized LLMs" not in chat_a
        assert "quantized LLMs" in chat_b and "emergent abilities" not in chat_b
        browser_a.close()
        browser_b.close()


def test_selecting_a_row_shows_the_abstract(page: Any) -> None:
    _library(page)
    query = page.locator("#library-query").locator("textarea, input").first
    query.press_sequentially("Generative Adversarial", delay=20)  # the filter follows the typing: no Enter
    first_cell = "#library-table [data-testid='cell-0-0']"
    page.wait_for_function(
        f"() => (document.querySelector(\"{first_cell}\") || {{}}).innerText === 'Generative Adversarial Networks'"
    )
    page.locator(first_cell).click()
    page.wait_for_function(
        "() => document.querySelector('#library-abstract').innerText.includes('adversarial process')"
    )
    assert page.locator("#library-abstract").inner_text().startswith("Generative Adversarial Networks")
    page.locator("#library-ask").click()  # to the chat, asking about this paper
    page.wait_for_function(f"() => ({ANSWERS_JS})() === 1", timeout=120_000)
    chat = page.locator("#chat")
    assert chat.is_visible() and 'What does the paper "Generative Adversarial Networks" find?' in chat.inner_text()
    assert "Generative Adversarial Networks" in chat.inner_text().split("Sources")[1]


def test_the_table_sorts_by_a_column(page: Any, bundled_settings: Settings) -> None:
    most = max(int(str(p.metadata["upvotes"])) for p in rag.indexed_papers(bundled_settings) if "upvotes" in p.metadata)
    _library(page)
    header = page.locator("#library-table thead th", has_text="Upvotes").first
    header.hover()
    header.get_by_role("button", name="Open cell menu").click()
    page.get_by_text("Sort descending").first.click()
    first_row = page.locator("#library-table .virtual-row").first
    page.wait_for_function(
        "n => (document.querySelector('#library-table .virtual-row') || {innerText: ''}).innerText.includes(n)",
        arg=str(most),
    )
    assert first_row.inner_text().split("\n")[-1] == str(most)
    # Years sort as numbers (the listings' dates as text sorted "Sep 9, 2020" after "Oct 3, 2023").
    newest = max(year_of(p.metadata) or 0 for p in rag.indexed_papers(bundled_settings))
    header = page.locator("#library-table thead th", has_text="Year").first
    header.hover()
    header.get_by_role("button", name="Open cell menu").click()
    page.get_by_text("Sort descending").first.click()
    page.wait_for_function(
        "n => (document.querySelector('#library-table .virtual-row') || {innerText: ''})"
        ".innerText.split('\\n')[1] == n",
        arg=str(newest),
    )

    # On a phone: title and year stay, the rest of the tab below them still reachable.
    page.set_viewport_size({"width": 390, "height": 900})
    page.wait_for_timeout(500)
    assert page.locator("#library-table thead th", has_text="Title").first.is_visible()
    assert not page.locator("#library-table thead th", has_text="Upvotes").first.is_visible()
    year = page.locator("#library-table [role=gridcell][data-col='1'] span").first
    assert year.inner_text().strip().isdigit() and year.bounding_box()["height"] < 40  # one line, not a digit a line
    label = page.locator("#library-fulltext label").first
    assert label.evaluate("l => l.scrollWidth <= l.clientWidth + 1")  # "Full-text search" whole, not cut
    page.locator("#library-add").scroll_into_view_if_needed()
    assert page.locator("#library-add").is_visible()
    page.evaluate("() => window.scrollTo(0, 0)")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "ui-library-390px.png"), full_page=True)


def test_an_app_bound_beyond_loopback_asks_for_the_login(bundled_settings: Settings, tmp_path: Path) -> None:
    import urllib.error
    import urllib.request

    logins = tmp_path / "logins"
    logins.write_text("ada:lovelace\n")
    port = free_port()
    env = {"RAG_INDEX_DIR": str(bundled_settings.index_dir)}
    args = ["ui", "--host", "0.0.0.0", "--port", str(port), "--auth-file", str(logins)]
    with serving(args, f"http://127.0.0.1:{port}/", env, 120):
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/config", timeout=30)
        assert refused.value.code == 401
        data = b"username=ada&password=lovelace"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", data=data, timeout=30) as resp:
            assert resp.status == 200


def test_read_only_app_has_no_upload_or_removal_and_no_api_for_them(read_only_url: str) -> None:
    import urllib.request

    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser, pg = open_chat(p, read_only_url)
        _library(pg)
        assert pg.locator("#library-read-only").is_visible()
        assert pg.locator("#library-add").count() == 0 and pg.locator("#library-remove").count() == 0
        browser.close()
    with urllib.request.urlopen(read_only_url + "gradio_api/info", timeout=30) as resp:
        info = resp.read().decode()
    assert "run_add" not in info and "run_remove" not in info


def test_a_large_collection_is_paged(bundled_settings: Settings, tmp_path: Path) -> None:
    """Over RAG_UI_TABLE_ROWS papers, the table shows one page at a time, read from the index."""
    total = len(rag.indexed_papers(bundled_settings))
    for url in _serve(bundled_settings, tmp_path, RAG_UI_TABLE_ROWS="100"):
        with chat_page(url) as page:
            _library(page)
            page.wait_for_function("() => document.querySelector('#library-pages').innerText.includes('Papers 1–100')")
            page.wait_for_function(  # (a progress timer shows in the component while it loads)
                "t => document.querySelector('#library-pages').innerText.trim() === t",
                arg=f"Papers 1–100 of {total}, in the order they were added.",
            )
            first_cell = "#library-table [data-testid='cell-0-0']"
            first_title = page.locator(first_cell).inner_text()
            page.locator("#library-next").click()
            shows = "t => document.querySelector('#library-pages').innerText.includes(t)"
            page.wait_for_function(shows, arg="Papers 101–200")
            page.wait_for_function(
                f't => (document.querySelector("{first_cell}") || {{}}).innerText !== t', arg=first_title
            )
            second_title = page.locator(first_cell).inner_text()
            page.locator(first_cell).click()  # the row ids follow the page
            page.wait_for_function(
                "t => document.querySelector('#library-abstract').innerText.startsWith(t)", arg=second_title
            )
            page.locator("#library-previous").click()
            page.wait_for_function("() => document.querySelector('#library-pages').innerText.includes('Papers 1–100')")
            page.screenshot(path=str(ARTIFACTS / "ui-library-paged.png"), full_page=True)
