"""Answers shaped by intent, follow-ups that do (not) depend on the previous turn, abstention by unknown names.

Unit tests of the rules sit next to tests of the same behaviour through `rag.ask` on the bundled
collection. The questions are written for these tests, not taken from the evaluation set.
"""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import AIMessage
from langchain_core.runnables import RunnableLambda

import rag
from rag.answer.abstention import ABSTAIN_PREFIX, Detail, asked_detail, states_detail
from rag.answer.answerers import chat as chat_answerer
from rag.answer.followup import analyse, condense_deterministic, depends_on_previous
from rag.answer.intent import detect_intent
from rag.config import Settings
from rag.text import named_terms

RELU = "Minimum width for universal approximation using ReLU networks on compact domain"
LEAKY = "Minimum Width of Leaky-ReLU Neural Networks for Uniform Universal Approximation"
RNN = "Minimal Width for Universal Property of Deep RNN"


@pytest.mark.parametrize(
    ("question", "intent"),
    [
        ("Which papers study contrastive learning?", "list"),
        ("Are there any papers on graph neural networks?", "list"),
        ("Any work on protein folding?", "list"),
        ("List the papers that use diffusion models.", "list"),
        ("Did any other paper find this?", "list"),
        ("Which paper introduced YOLOv4?", "lookup"),
        ("Is there a paper on sparse attention?", "lookup"),
        ("How does BigBird compare with dense attention?", "compare"),
        ("What is the difference between DeepONet and FNO?", "compare"),
        ("What batch size did they use?", "detail"),
        ("How many GPUs were used?", "detail"),
        ("What accuracy does the baseline reach on CIFAR-100?", "detail"),
        ("What is a lottery ticket?", "explain"),
        ("How does universal guidance work?", "explain"),
        ("Summarise the GAN paper.", "explain"),
    ],
)
def test_intent_is_read_from_the_question_form(question: str, intent: str) -> None:
    assert detect_intent(question) == intent


def test_named_terms_are_models_datasets_and_quoted_titles() -> None:
    assert named_terms("What did the Gopher paper find on MMLU?") == ["Gopher", "MMLU"]
    assert named_terms("How does GPT-NeoX-20B compare with RoBERTa?") == ["GPT-NeoX-20B", "RoBERTa"]
    assert named_terms("What Inception Score does it reach?") == ["Inception Score"]
    assert named_terms("What is 'Feature Collapse' about?") == ["Feature Collapse"]
    assert named_terms("How do neural networks generalise?") == []


def _similarity(value: float) -> Any:
    return lambda a, b: value


@pytest.mark.parametrize(
    ("question", "similar", "dependent"),
    [
        ("What does it extend?", 0.0, True),  # too short to be about anything else
        ("Which guidance functions did they demonstrate it with?", 0.4, True),
        ("Are there other papers about making that kernel cheaper to compute?", 0.45, True),
        # Points back ("the same", "its") but is about something else entirely.
        ("Is there a paper where the same detector shares all its parameters across image domains?", 0.1, False),
        ("Which paper introduced YOLOv4?", 0.0, False),  # short, but it names what it is about
        ("How can the orthogonalization step in the Muon optimizer be made cheaper?", 0.05, False),
    ],
)
def test_a_question_depends_on_the_previous_one_only_when_it_points_back_at_its_topic(
    question: str, similar: float, dependent: bool
) -> None:
    assert depends_on_previous(question, "What is the neural tangent kernel?", _similarity(similar)) is dependent


def test_a_dependent_question_carries_the_previous_topic_and_a_relative_one_not_the_old_paper() -> None:
    history = [
        {"role": "user", "content": "Which paper introduced the neural tangent kernel?"},
        {"role": "assistant", "content": "The collection does not answer this: none of the papers is about this."},
    ]
    follow = analyse("What does it converge to?", history, _similarity(0.5))
    follow.previous_titles = ["Neural Tangent Kernel: Convergence and Generalization in Neural Networks"]
    rewritten = condense_deterministic("What does it converge to?", follow)
    assert "neural tangent kernel" in rewritten and rewritten.startswith("What does it converge to?")
    assert "collection" not in rewritten  # the previous answer's words are not carried
    other = analyse("Is there another paper on cheaper kernels?", history, _similarity(0.5))
    other.previous_titles = follow.previous_titles
    assert other.relative and "Convergence and Generalization" not in condense_deterministic(
        "Is there another paper on cheaper kernels?", other
    )


def test_list_question_names_every_fitting_paper_one_line_each(bundled_settings: Settings) -> None:
    answer = rag.ask(
        "Which papers are about the minimum width of networks for universal approximation?", settings=bundled_settings
    )
    assert answer.intent == "list" and not answer.abstained
    cited = [c.title for c in answer.citations]
    assert {RELU, LEAKY, RNN} <= set(cited)
    lines = answer.text.splitlines()
    assert len(lines) == len(cited)
    for n, (line, title) in enumerate(zip(lines, cited, strict=True), start=1):
        assert line.startswith(f"- {title}: ") and line.rstrip(".").endswith(f"[{n}]")
    assert len(answer.sources) == bundled_settings.list_k  # a list question looks further than top_k


def test_relative_follow_up_leaves_out_the_previous_papers(bundled_settings: Settings) -> None:
    first_q = "What is the minimum width for universal approximation with ReLU networks on a compact domain?"
    first = rag.ask(first_q, settings=bundled_settings)
    assert [c.title for c in first.citations] == [RELU]
    history = [{"role": "user", "content": first_q}, {"role": "assistant", "content": first.text}]
    follow = rag.ask(
        "Are there other papers on the minimum width needed for universal approximation?",
        history=history,
        settings=bundled_settings,
    )
    assert follow.excluded_titles == [RELU]
    assert RELU not in [h.title for h in follow.sources]
    assert {LEAKY, RNN} & {c.title for c in follow.citations}


def test_relative_follow_up_with_no_other_paper_says_so(bundled_settings: Settings) -> None:
    first_q = "Which papers are about lottery tickets in neural networks?"
    first = rag.ask(first_q, settings=bundled_settings)
    history = [{"role": "user", "content": first_q}, {"role": "assistant", "content": first.text}]
    follow = rag.ask(
        "Did any other paper find such subnetworks without any training at all?",
        history=history,
        settings=bundled_settings,
    )
    assert follow.abstained and "no paper on this besides" in follow.text
    assert not {c.title for c in first.citations} & {c.title for c in follow.citations}


def test_standalone_question_after_an_unrelated_turn_is_searched_as_asked(bundled_settings: Settings) -> None:
    history = [
        {"role": "user", "content": "Which papers are about lottery tickets in neural networks?"},
        {"role": "assistant", "content": "- On the Existence of Universal Lottery Tickets: ... [1]"},
    ]
    pde = "Is there a paper where one network learns to solve many different PDEs at once?"
    for question in ("Which paper introduced YOLOv4?", pde):
        answer = rag.ask(question, history=history, settings=bundled_settings)
        assert answer.standalone_question == question
    yolo = rag.ask("Which paper introduced YOLOv4?", history=history, settings=bundled_settings)
    assert yolo.citations[0].title == "YOLOv4: Optimal Speed and Accuracy of Object Detection"


def test_a_name_the_collection_never_mentions_is_named_in_the_abstention(bundled_settings: Settings) -> None:
    answer = rag.ask("How does PyTorch FSDP shard the optimizer state?", settings=bundled_settings)
    assert answer.abstained and answer.citations == []
    assert answer.text.startswith(ABSTAIN_PREFIX) and "never mentions “PyTorch FSDP”" in answer.text


def test_a_misspelled_title_is_not_an_unknown_name(bundled_settings: Settings) -> None:
    answer = rag.ask("What is 'Universl Guidance for Diffusion Modles' about?", settings=bundled_settings)
    assert not answer.abstained
    assert answer.citations[0].title == "Universal Guidance for Diffusion Models"


def test_a_short_question_naming_a_method_is_answered_from_the_paper_that_names_it(
    bundled_settings: Settings,
) -> None:
    answer = rag.ask("How does NeuMeta work?", settings=bundled_settings)
    assert not answer.abstained
    assert answer.citations[0].title == "Neural Metamorphosis"


def test_unknown_names_abstain_before_any_model_is_called(
    monkeypatch: pytest.MonkeyPatch, bundled_settings: Settings
) -> None:
    def no_model(settings: Settings, streaming: bool = False) -> Any:
        raise AssertionError("the chat model must not be called")

    monkeypatch.setattr(chat_answerer, "chat_model", no_model)
    settings = bundled_settings.with_overrides(llm="openai", openai_base_url="http://127.0.0.1:9/v1")
    answer = rag.ask("What did the Gopher language model find at 280 billion parameters?", settings=settings)
    assert answer.abstained and "never mentions “Gopher”" in answer.text


def test_the_chat_model_is_asked_for_every_relevant_paper_on_a_list_question(
    monkeypatch: pytest.MonkeyPatch, bundled_settings: Settings
) -> None:
    prompts: list[str] = []

    def fake(prompt: Any) -> AIMessage:
        prompts.append(prompt.to_string())
        return AIMessage(content=f"- {RELU}: It studies the minimum width [1].")

    monkeypatch.setattr(chat_answerer, "chat_model", lambda settings, streaming=False: RunnableLambda(fake))
    settings = bundled_settings.with_overrides(llm="openai", openai_base_url="http://127.0.0.1:9/v1")
    answer = rag.ask("Which papers study the minimum width for universal approximation?", settings=settings)
    assert "name EVERY relevant source, one line per paper" in prompts[0]
    assert answer.intent == "list" and [c.title for c in answer.citations] == [RELU]
    explain = rag.ask("What is a lottery ticket?", settings=settings)
    assert explain.intent == "explain" and "EVERY" not in prompts[1]


def test_a_detail_counts_as_stated_only_with_its_value() -> None:
    seeds = asked_detail("What random seed values were used for the GPT2 models?")
    assert seeds == Detail("setting", "random seed")
    assert not states_detail(seeds, "random seed values GPT2", "GPT2 models trained from different random seeds.")
    assert states_detail(seeds, "random seed values GPT2", "We train GPT2 models with 5 random seeds.")
    accuracy = asked_detail("What accuracy does the baseline reach on CIFAR-100?")
    assert accuracy is not None and accuracy.kind == "number"
    q = "What accuracy does the baseline reach on CIFAR-100?"
    assert states_detail(accuracy, q, "This baseline achieved 88.53% on CIFAR-100.")  # a percentage states it
    assert not states_detail(accuracy, q, "The baseline reduces memory 18 times on CIFAR-100.")  # another number


@pytest.mark.parametrize(
    "history",
    [
        [{"role": "assistant", "content": "   "}],
        [{"role": "user", "content": "\x00\x01"}, {"role": "assistant", "content": "\x00 \x07"}],
        [{"role": "user", "content": "What is a lottery ticket?"}],
    ],
)
def test_a_follow_up_to_an_empty_or_one_sided_conversation_is_answered(
    bundled_settings: Settings, history: list[dict[str, str]]
) -> None:
    answer = rag.ask("What does it extend?", history=history, settings=bundled_settings)
    assert answer.standalone_question.startswith("What does it extend?")


def test_a_setting_mentioned_in_a_keyword_query_is_not_asked_for() -> None:
    assert asked_detail("neurons shared across GPT-2 models trained from different random seeds") is None
    assert asked_detail("Which random seeds were used?") == Detail("setting", "random seed")
