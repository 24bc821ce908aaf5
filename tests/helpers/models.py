"""Tiny ONNX models with the real ones' interfaces, built by the tests (``onnx`` needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from staging.segment.u2net import IMAGENET_MEAN, IMAGENET_STD

GAIN = 12.0


def make_u2net_like(path: Path, size: int | None = 320) -> Path:
    """Save a U^2-Net-shaped brightness detector; ``size=None`` makes H, W dynamic."""
    import onnx
    from onnx import TensorProto, helper

    h = w = size if size is not None else None
    in_shape = [1, 3, h or "H", w or "W"]
    out_shape = [1, 1, h or "H", w or "W"]
    # x_c = (v_c - mean_c) / std_c  =>  sum_c v_c / 3 = sum_c (std_c x_c + mean_c) / 3.
    weight = (GAIN * IMAGENET_STD / 3).astype(np.float32).reshape(1, 3, 1, 1)
    bias = np.array([GAIN * (IMAGENET_MEAN.sum() / 3 - 0.5)], dtype=np.float32)
    nodes = [
        helper.make_node("Conv", ["input.1", "w", "b"], ["logits"]),
        helper.make_node("Sigmoid", ["logits"], ["d0"]),
    ]
    nodes += [helper.make_node("Identity", ["d0"], [f"d{i}"]) for i in range(1, 7)]
    graph = helper.make_graph(
        nodes,
        "tiny_u2net",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, in_shape)],
        [helper.make_tensor_value_info(f"d{i}", TensorProto.FLOAT, out_shape) for i in range(7)],
        initializer=[
            helper.make_tensor("w", TensorProto.FLOAT, weight.shape, weight.ravel().tolist()),
            helper.make_tensor("b", TensorProto.FLOAT, bias.shape, bias.tolist()),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # readable by every onnxruntime we support
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def tiny_lama(path, layout: str = "image+mask", size: int = 512) -> None:
    """An ONNX file with LaMa's signature whose 'inpainting' paints the hole mid-grey."""
    import onnx
    from onnx import TensorProto, helper

    nodes = []
    if layout == "image+mask":
        inputs = [
            helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, size, size]),
            helper.make_tensor_value_info("mask", TensorProto.FLOAT, [1, 1, size, size]),
        ]
        scale = 255.0  # Carve's export returns 0..255
    else:
        inputs = [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 4, size, size])]
        nodes.append(helper.make_node("Split", ["input", "split"], ["image", "mask"], axis=1))
        scale = 1.0
    consts = {
        "one": np.array(1.0, np.float32),
        "grey": np.array(0.5, np.float32),
        "scale": np.array(scale, np.float32),
        "split": np.array([3, 1], np.int64),
    }
    inits = [onnx.numpy_helper.from_array(v, k) for k, v in consts.items()]
    nodes += [
        helper.make_node("Sub", ["one", "mask"], ["keep"]),
        helper.make_node("Mul", ["image", "keep"], ["kept"]),
        helper.make_node("Mul", ["mask", "grey"], ["painted"]),
        helper.make_node("Add", ["kept", "painted"], ["sum"]),
        helper.make_node("Mul", ["sum", "scale"], ["output"]),
    ]
    output = helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 3, size, size])
    graph = helper.make_graph(nodes, "tiny_lama", inputs, [output], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
