"""Search quality and behaviour on the bundled collection (real embedder, real Chroma, real BM25)."""

from __future__ import annotations

import pytest

import rag
from rag.config import Settings

# Hand-written paraphrases: they avoid the title's distinctive words where they can.
QUESTIONS = [
    (
        "How narrow can a leaky-ReLU net be and still uniformly approximate any function?",
        "Minimum Width of Leaky-ReLU Neural Networks for Uniform Universal Approximation",
    ),
    (
        "Which work estimates how much memory a transformer's soft prompt can store?",
        "Memory Limitations of Prompt Tuning in Transformers",
    ),
    (
        "replacing the dot product in an artificial neuron with a weighted Lehmer mean",
        "An Informal Introduction to Multiplet Neural Networks",
    ),
    (
        "a fairness notion of proportionality for placing a facility, strategyproof randomized mechanism",
        "Random Rank: The One and Only Strategyproof and Proportionally Fair Randomized Facility Location Mechanism",
    ),
    (
        "thermodynamic work extraction viewed through information theory",
        "The information-theoretic foundation of thermodynamic work extraction",
    ),
    (
        "upsampling features of any vision encoder at any resolution without retraining per encoder",
        "AnyUp: Universal Feature Upsampling",
    ),
    (
        "why do models prefer features that are easy to extract over predictive ones?",
        "On the Foundations of Shortcut Learning",
    ),
    (
        "retrieving prompts automatically to improve zero-shot performance of LLMs on unseen tasks",
        "UPRISE: Universal Prompt Retrieval for Improving Zero-Shot Evaluation",
    ),
    (
        "training graph neural networks without backpropagation, using only forward passes",
        "Forward Learning of Graph Neural Networks",
    ),
    (
        "instead of equivariant architectures, learn a function that maps inputs to a canonical orientation",
        "Equivariance with Learned Canonicalization Functions",
    ),
    (
        "prior-data fitted networks that approximate posterior predictive distributions",
        "Transformers Can Do Bayesian Inference",
    ),
    (
        "a network that outputs the weights of another network suffers from unstable training due to input scale",
        "Magnitude Invariant Parametrizations Improve Hypernetwork Learning",
    ),
    (
        "adding new tasks to a vision system when the old training data is no longer available",
        "Learning without Forgetting",
    ),
    (
        "diffusion model samples satisfy concentration of measure for Lipschitz projections",
        "Concentration of Measure for Distributions Generated via Diffusion Models",
    ),
    (
        "automatic generation of features for tabular data reaching expert level",
        "OpenFE: Automated Feature Generation with Expert-level Performance",
    ),
    (
        "anomaly detection in novel visual domains by adapting a pretrained vision-language model",
        "AdaptCLIP: Adapting CLIP for Universal Visual Anomaly Detection",
    ),
    (
        "learning compositions of a polynomial with a low-degree feature using a three layer network",
        "Learning Hierarchical Polynomials with Three-Layer Neural Networks",
    ),
    (
        "abilities that appear suddenly in bigger language models and are absent in smaller ones",
        "Emergent Abilities of Large Language Models",
    ),
    (
        "neurons that are shared across GPT-2 models trained from different random seeds",
        "Universal Neurons in GPT2 Language Models",
    ),
    (
        "sparse subnetworks of a random network that can be reused for many tasks",
        "On the Existence of Universal Lottery Tickets",
    ),
    (
        "neural operators that learn mappings between infinite-dimensional function spaces",
        "Neural Operator: Learning Maps Between Function Spaces",
    ),
    (
        "fine-tuning quantized LLMs with zeroth-order gradient estimates to save GPU memory",
        "Fine-tuning Quantized Neural Networks with Zeroth-order Optimization",
    ),
    (
        "selecting a subset of input features for neural networks with an attention mechanism",
        "Sequential Attention for Feature Selection",
    ),
]


@pytest.mark.parametrize(("question", "title"), QUESTIONS, ids=[t[:40] for _, t in QUESTIONS])
def test_expected_paper_in_top_3(bundled_settings: Settings, question: str, title: str) -> None:
    titles = [h.title for h in rag.search(question, k=3, settings=bundled_settings)]
    assert title in titles


@pytest.mark.parametrize(
    ("query", "title"),
    [
        ("Univresal Nuerons in GPT2 Langauge Models", "Universal Neurons in GPT2 Language Models"),
        ("tell me about 'Emergant Abilites of Large Languge Models'", "Emergent Abilities of Large Language Models"),
        ("what does the paper Learning withuot Forgeting propose?", "Learning without Forgetting"),
        ("Transformers can do bayesian inferance", "Transformers Can Do Bayesian Inference"),
    ],
)
def test_named_title_comes_first_even_misspelled(bundled_settings: Settings, query: str, title: str) -> None:
    assert rag.search(query, k=5, settings=bundled_settings)[0].title == title


def test_one_hit_per_paper_best_first(bundled_settings: Settings) -> None:
    hits = rag.search("universal approximation", k=10, settings=bundled_settings)
    assert len(hits) == 10
    assert len({h.paper_id for h in hits}) == 10
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert all(h.text.startswith(h.title + "\n") for h in hits)


@pytest.mark.parametrize("retriever", ["dense", "bm25", "hybrid"])
def test_each_retriever_works_alone(bundled_settings: Settings, retriever: str) -> None:
    hits = rag.search(
        "lottery ticket hypothesis sparse subnetworks", k=5, retriever=retriever, settings=bundled_settings
    )  # type: ignore[arg-type]
    assert any("Lottery" in h.title for h in hits)


@pytest.mark.parametrize("query", ["", "   \n\t ", "\x00\x01"])
def test_empty_query_is_a_clear_value_error(bundled_settings: Settings, query: str) -> None:
    with pytest.raises(ValueError, match="query is empty"):
        rag.search(query, settings=bundled_settings)


def test_very_long_query_is_truncated_not_a_crash(bundled_settings: Settings) -> None:
    query = "lottery tickets in randomly initialised networks " * 2100  # ~100k characters
    assert len(query) > 100_000
    hits = rag.search(query, k=3, settings=bundled_settings)
    assert any("Lottery" in h.title for h in hits)


def test_query_with_no_known_words_still_returns_dense_hits(bundled_settings: Settings) -> None:
    assert len(rag.search("zxqv wplm", k=3, settings=bundled_settings)) == 3


def test_search_builds_the_index_on_first_use(fresh_settings: Settings) -> None:
    hits = rag.search("group operations learned by small networks", k=3, settings=fresh_settings)
    assert "A Toy Model of Universality: Reverse Engineering How Networks Learn Group Operations" in [
        h.title for h in hits
    ]
