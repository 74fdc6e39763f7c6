"""A faster MiniLM graph, built once from the packaged file: fused attention and true int8 matrix products.

The packaged file stores int8 weights but dequantizes them at every run and
multiplies in fp32 (48 fp32 MatMuls). This module derives a graph that
computes in int8 from it, and caches it on disk (nothing new is shipped or
downloaded; the build takes a few seconds, once per machine and version):

1. constant-fold the dequantization (onnxruntime's basic optimizer), giving fp32 weights;
2. drop the softmax NaN guards (`Where(IsNaN(p), 0, p)`): a row is all-masked only
   when a text has no tokens, and every text has [CLS];
3. replace each layer's attention subgraph (Q, K, V projections, scaled scores, mask,
   softmax, context) by one `com.microsoft.Attention` node with packed QKV weights;
4. quantize the weight matrices per output channel to int8 (`quantize_dynamic`,
   activations quantized per batch at run time: U8S8, which VNNI CPUs run natively).

Per-channel scales are what keep quality: per-tensor int8 fell to cosine .93 with
the packaged vectors, per-channel keeps .995 mean / .99 min on the bundled chunks.
A build is checked against the packaged model on probe sentences before it is
used (`MIN_AGREEMENT`); any failure falls back to the packaged graph, with a warning.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from filelock import FileLock

from rag.config import model_cache_dir

if TYPE_CHECKING:
    import onnx

log = logging.getLogger(__name__)

BUILD_VERSION = "1"  # bump when the recipe changes: the cache key changes with it
MIN_AGREEMENT = 0.98  # lowest probe cosine with the packaged model that a build may have
NUM_HEADS = 12
PROBES = (
    "Sparse subnetworks found at initialization train to the accuracy of the dense network.",
    "We study how the test loss of language models scales with parameters, data and compute.",
    "Adversarial examples transfer between architectures trained on the same data.",
    "A graph neural network predicts molecular properties from atoms and bonds.",
    "Diffusion models generate images by reversing a gradual noising process.",
    "attention",
)


def cache_dir() -> Path:
    return model_cache_dir()


def cached_path(source_sha256: str) -> Path:
    """Where the int8 graph of the packaged file with this sha256 lives (keyed by recipe and onnxruntime)."""
    import onnxruntime as ort

    return cache_dir() / f"minilm-int8-{source_sha256[:12]}-ort{ort.__version__}-v{BUILD_VERSION}.onnx"


def fold_dequantization(source: Path, target: Path) -> None:
    """Step 1: onnxruntime's basic (standard-op) optimizations, saved: int8 weights become fp32 constants."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.optimized_model_filepath = str(target)
    ort.InferenceSession(str(source), options, providers=["CPUExecutionProvider"])


def drop_nan_guards(model: onnx.ModelProto) -> int:
    """Step 2: `Where(IsNaN(p), 0, p)` -> `p` after each softmax; the number removed."""
    graph = model.graph
    producer = {out: node for node in graph.node for out in node.output}
    rename: dict[str, str] = {}
    dead = []
    for node in graph.node:
        guard = producer.get(node.input[0]) if node.op_type == "Where" and len(node.input) == 3 else None
        if guard is not None and guard.op_type == "IsNaN" and guard.input[0] == node.input[2]:
            rename[node.output[0]] = node.input[2]
            dead += [node, guard]
    for node in dead:
        graph.node.remove(node)
    for node in graph.node:
        for i, name in enumerate(node.input):
            node.input[i] = rename.get(name, name)
    return len(dead) // 2


def fuse_attention(model: onnx.ModelProto) -> int:
    """Step 3: one `Attention` node per encoder layer; the number of layers fused.

    The layer's Q/K/V projections are found by their bias names (as exported from
    sentence-transformers' BertModel), and the context by the `scaled_dot_product_attention`
    MatMul whose head-merging Transpose and Reshape the new node replaces.
    """
    from onnx import TensorProto, helper, numpy_helper

    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    producer = {out: node for node in graph.node for out in node.output}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)

    def projection(layer: int, part: str) -> tuple[str, np.ndarray, np.ndarray]:
        bias = f"inner.encoder.layer.{layer}.attention.self.{part}.bias"
        add = next(n for n in consumers[bias] if n.op_type == "Add")
        matmul = producer[add.input[0] if add.input[1] == bias else add.input[1]]
        if matmul.op_type != "MatMul" or matmul.input[1] not in inits:
            raise ValueError(f"layer {layer} {part}: unexpected graph around {add.name}")
        weight = numpy_helper.to_array(inits[matmul.input[1]])
        return matmul.input[0], weight, numpy_helper.to_array(inits[bias])

    sdpa = sorted(
        (n for n in graph.node if n.op_type == "MatMul" and n.name.startswith("node_scaled_dot_product_attention")),
        key=lambda n: int(n.name.rpartition("_")[2]) if n.name[-1].isdigit() else 0,
    )
    mask = helper.make_node("Cast", ["attention_mask"], ["attention_mask_int32"], to=TensorProto.INT32)
    fused: list[tuple[onnx.NodeProto, onnx.NodeProto]] = []
    for layer, context in enumerate(sdpa):
        inputs, weights, biases = zip(*(projection(layer, part) for part in ("query", "key", "value")), strict=True)
        if len(set(inputs)) != 1:
            raise ValueError(f"layer {layer}: Q, K and V read different inputs")
        transpose = consumers[context.output[0]][0]
        reshape = consumers[transpose.output[0]][0]
        if transpose.op_type != "Transpose" or reshape.op_type != "Reshape":
            raise ValueError(f"layer {layer}: unexpected graph after {context.name}")
        w_name, b_name = f"attention_{layer}_qkv_weight", f"attention_{layer}_qkv_bias"
        graph.initializer.extend(
            [
                numpy_helper.from_array(np.concatenate(weights, axis=1).astype(np.float32), w_name),
                numpy_helper.from_array(np.concatenate(biases).astype(np.float32), b_name),
            ]
        )
        node = helper.make_node(
            "Attention",
            [inputs[0], w_name, b_name, mask.output[0]],
            [reshape.output[0]],
            name=f"attention_{layer}",
            domain="com.microsoft",
            num_heads=NUM_HEADS,
        )
        fused.append((reshape, node))
    if not fused:
        raise ValueError("no attention subgraph found")
    graph.node.insert(0, mask)
    for old, node in fused:
        graph.node.remove(old)
        after = max(i for i, n in enumerate(graph.node) if node.input[0] in n.output)
        graph.node.insert(after + 1, node)
    _prune(model)
    if not any(op.domain == "com.microsoft" for op in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    return len(fused)


def _prune(model: onnx.ModelProto) -> None:
    """Remove nodes whose outputs nothing reads, then unused initializers."""
    graph = model.graph
    outputs = {o.name for o in graph.output}
    while True:
        read = {name for node in graph.node for name in node.input} | outputs
        dead = [node for node in graph.node if not any(out in read for out in node.output)]
        if not dead:
            break
        for node in dead:
            graph.node.remove(node)
    read = {name for node in graph.node for name in node.input}
    for tensor in [t for t in graph.initializer if t.name not in read]:
        graph.initializer.remove(tensor)


def build(source: Path, target: Path, check: Callable[[Path], float]) -> None:
    """Steps 1-4, written atomically to `target` once `check` (the probe agreement of a candidate) passes."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".build-") as tmp:
        folded, fused, quantized = Path(tmp, "folded.onnx"), Path(tmp, "fused.onnx"), Path(tmp, "int8.onnx")
        fold_dequantization(source, folded)
        model = onnx.load(str(folded))
        drop_nan_guards(model)
        fuse_attention(model)
        onnx.checker.check_model(model)
        onnx.save(model, str(fused))
        logging.disable(logging.WARNING)  # the quantizer logs advice and every tensor to the root logger
        try:
            quantize_dynamic(str(fused), str(quantized), per_channel=True, weight_type=QuantType.QInt8)
        finally:
            logging.disable(logging.NOTSET)
        agrees = check(quantized)
        if agrees < MIN_AGREEMENT:
            raise ValueError(f"the int8 graph agrees with the packaged one only to cosine {agrees:.3f}")
        os.replace(quantized, target)


def agreement(fast: np.ndarray, reference: np.ndarray) -> float:
    """The lowest cosine between corresponding rows (both L2-normalised)."""
    return float((fast * reference).sum(axis=1).min())


def int8_model(source: Path, source_sha256: str, check: Callable[[Path], float]) -> Path:
    """The cached int8 graph of `source`, built and checked first if missing (one builder at a time)."""
    target = cached_path(source_sha256)
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if not target.is_file():
            log.info("building the int8 MiniLM graph (once) at %s", target)
            build(source, target, check)
    return target
