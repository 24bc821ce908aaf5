"""Embedders and the retrieval metric.

The MobileNetV2 code path (finding the pre-pool feature map, exposing it as a graph output in
memory, batching, pooling) runs on a tiny ONNX model built here with the same input/output
names; the real ``mobilenetv2-12-int8.onnx`` is used only when ../shared has it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from staging.embed import DEFAULT, EMBEDDERS, best_available, create_embedder
from staging.embed.base import Embedder, l2_normalize, product_crop
from staging.embed.fused import FusedEmbedder
from staging.embed.handcrafted import HandcraftedEmbedder
from staging.errors import ModelNotAvailableError, UnknownNameError
from staging.evaluate.retrieval import evaluate_retrieval, retrieval_metrics
from staging.models import ModelStore
from staging.runtime import Runtime

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
REAL_MOBILENET = SHARED / "models" / "mobilenetv2-12-int8.onnx"


# ------------------------------------------------------------------------------------ helpers


def product(kind: str, background, size=(180, 220), seed: int = 0):
    """A synthetic product (textured shape) on ``background``; returns (image, mask)."""
    h, w = size
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w]
    if kind == "disc":
        mask = (yy - 90) ** 2 + (xx - 110) ** 2 < 60**2
    elif kind == "tall":
        mask = (abs(yy - 90) < 75) & (abs(xx - 110) < 22)
    else:  # "wide"
        mask = (abs(yy - 100) < 18) & (abs(xx - 110) < 90)
    if isinstance(background, str) and background == "noise":
        image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    else:
        image = np.empty((h, w, 3), np.uint8)
        image[:] = background
    stripes = ((xx // 6 + yy // 9) % 2).astype(np.uint8)
    colour = np.stack([120 + 80 * stripes, 60 + 40 * stripes, 30 + 20 * stripes], axis=-1)
    image[mask] = colour[mask]
    return image, mask


@pytest.fixture
def runtime(tmp_path) -> Runtime:
    return Runtime(ModelStore([tmp_path / "models"]))


# --------------------------------------------------------------------------------- base crop


def test_product_crop_squares_and_fills():
    image, mask = product("tall", (10, 200, 10))
    crop = product_crop(image, mask, margin=0.1)
    assert crop.image.shape[0] == crop.image.shape[1]
    assert (crop.image[~crop.mask] == 255).all()  # background painted white
    assert crop.mask.sum() == mask.sum()
    small = product_crop(image, mask, size=64)
    assert small.image.shape == (64, 64, 3) and small.mask.shape == (64, 64)
    whole = product_crop(image, np.zeros_like(mask))  # empty mask: the whole image
    assert whole.box == (0, 0, image.shape[1], image.shape[0])
    with pytest.raises(ValueError):
        product_crop(image, mask[:10])


# ------------------------------------------------------------------------------ handcrafted


@pytest.fixture(scope="module")
def handcrafted() -> HandcraftedEmbedder:
    return HandcraftedEmbedder()


def test_handcrafted_unit_norm_dim_and_determinism(handcrafted):
    image, mask = product("disc", (250, 250, 250))
    a = handcrafted.embed(image, mask)
    b = handcrafted.embed(image.copy(), mask.copy())
    assert a.dtype == np.float32 and a.shape == (handcrafted.dim,)
    assert np.linalg.norm(a) == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_array_equal(a, b)
    batch = handcrafted.embed_batch([image, image], [mask, None])
    assert batch.shape == (2, handcrafted.dim)
    np.testing.assert_allclose(batch[0], a, atol=1e-6)
    assert np.linalg.norm(handcrafted.embed(image)) == pytest.approx(1.0, abs=1e-5)


def test_handcrafted_ignores_the_background_when_masked(handcrafted):
    on_white, mask = product("disc", (255, 255, 255))
    on_noise, _ = product("disc", "noise")
    on_green, _ = product("disc", (20, 160, 40))
    e = handcrafted.embed_batch([on_white, on_noise, on_green], [mask, mask, mask])
    assert float(e[0] @ e[1]) > 0.999
    assert float(e[0] @ e[2]) > 0.999
    unmasked = handcrafted.embed(on_noise)
    assert float(e[0] @ unmasked) < 0.99  # without the mask the noise does count


def test_handcrafted_separates_shapes(handcrafted):
    items = [product(k, (250, 250, 250), seed=i) for k in ("disc", "tall", "wide") for i in (0, 1)]
    e = handcrafted.embed_batch([i for i, _ in items], [m for _, m in items])
    labels = ["disc", "disc", "tall", "tall", "wide", "wide"]
    assert retrieval_metrics(e, labels, ks=(1,))["P@1"] == 1.0


# ------------------------------------------------------------------------------- the metric


def test_retrieval_metrics_hand_made_example():
    # Four items on a line; cosines make the neighbour order obvious.
    angles = np.array([0.0, 0.1, 1.0, 1.15])
    emb = np.stack([np.cos(angles), np.sin(angles)], axis=1) * np.array([[3.0], [1], [2], [5]])
    labels = ["a", "a", "b", "a"]
    # neighbours (query excluded): 0 -> 1,2,3   1 -> 0,2,3   2 -> 3,1,0   3 -> 2,1,0
    m = retrieval_metrics(emb, labels, ks=(1, 2, 3))
    assert m["P@1"] == pytest.approx((1 + 1 + 0 + 0) / 4)
    assert m["R@1"] == pytest.approx(m["P@1"])
    assert m["P@2"] == pytest.approx((1 / 2 + 1 / 2 + 0 / 2 + 1 / 2) / 4)
    assert m["R@2"] == pytest.approx(3 / 4)
    assert m["P@3"] == pytest.approx((2 / 3 + 2 / 3 + 0 + 2 / 3) / 4)
    assert m["R@3"] == pytest.approx(3 / 4)
    assert m["queries"] == 4


def test_retrieval_metrics_k_beyond_gallery_and_errors():
    m = retrieval_metrics(np.eye(3), ["x", "x", "y"], ks=(5,))
    # only 2 candidates per query: P@5 counts relevant / 5
    assert m["P@5"] == pytest.approx((1 / 5 + 1 / 5 + 0) / 3)
    assert m["R@5"] == pytest.approx(2 / 3)
    with pytest.raises(ValueError):
        retrieval_metrics(np.eye(1), ["x"])
    with pytest.raises(ValueError):
        retrieval_metrics(np.eye(3), ["x", "y"])


def test_evaluate_retrieval_on_a_tiny_csv(tmp_path, handcrafted):
    from PIL import Image

    rows = ["id,image,type"]
    for i, kind in enumerate(["disc", "disc", "disc", "tall", "tall", "tall", "wide"]):
        image, _ = product(kind, (252, 252, 252), seed=i)
        Image.fromarray(image).save(tmp_path / f"p{i}.png")
        rows.append(f"{i},p{i}.png,{kind}")
    rows.append("9,missing.png,")  # empty label: dropped before loading
    (tmp_path / "products.csv").write_text("\n".join(rows) + "\n")
    report = evaluate_retrieval(
        handcrafted, tmp_path / "products.csv", tmp_path, min_count=3, progress=False
    )
    assert report["queries"] == 6 and report["labels"] == 2  # "wide" has < 3 images
    assert report["P@1"] == 1.0 and report["R@5"] == 1.0
    assert report["masks"] in {"backdrop", "white-threshold"}
    assert report["embedder"] == "handcrafted" and report["images_per_second"] > 0


# ------------------------------------------------------------------------------- registry


def test_registry(runtime):
    assert DEFAULT == "handcrafted" and set(EMBEDDERS) >= {"handcrafted", "mobilenet_v2", "fused"}
    assert isinstance(create_embedder(None, runtime), HandcraftedEmbedder)
    assert best_available(runtime) == "handcrafted"  # no weights in an empty models dir
    with pytest.raises(UnknownNameError):
        create_embedder("nope", runtime)
    with pytest.raises(ModelNotAvailableError, match="staging models pull mobilenet_v2"):
        create_embedder("mobilenet_v2", runtime)


# ------------------------------------------------------------------------- mobilenet (tiny)

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402

from staging.embed.mobilenet_v2 import (  # noqa: E402
    MobileNetV2Embedder,
    expose_feature_map,
    find_feature_tensor,
)


def make_tiny_mobilenet(path: Path, channels: int = 6) -> Path:
    """``input`` [N,3,224,224] -> conv 32/32 -> ReLU ``features`` [N,C,7,7] -> GAP -> ``output``."""
    rng = np.random.default_rng(0)
    weight = rng.normal(size=(channels, 3, 32, 32)).astype(np.float32) / 100
    fc = rng.normal(size=(channels, 10)).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["input", "w"], ["conv"], strides=[32, 32]),
        helper.make_node("Relu", ["conv"], ["features"]),
        helper.make_node("GlobalAveragePool", ["features"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["flat"]),
        helper.make_node("MatMul", ["flat", "fc"], ["output"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_mobilenet",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 224, 224])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 10])],
        initializer=[
            helper.make_tensor("w", TensorProto.FLOAT, weight.shape, weight.ravel().tolist()),
            helper.make_tensor("fc", TensorProto.FLOAT, fc.shape, fc.ravel().tolist()),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


@pytest.fixture
def tiny_runtime(tmp_path) -> Runtime:
    make_tiny_mobilenet(tmp_path / "models" / "mobilenetv2-12-int8.onnx")
    return Runtime(ModelStore([tmp_path / "models"]))


def test_tiny_mobilenet_exposes_features_in_memory_only(tiny_runtime):
    path = tiny_runtime.store.path("mobilenet_v2")
    before = path.read_bytes()
    embedder = create_embedder("mobilenet_v2", tiny_runtime)
    assert isinstance(embedder, MobileNetV2Embedder)
    assert embedder.feature_tensor == "features" and embedder.dim == 6
    assert path.read_bytes() == before  # the file on disk is untouched
    image, mask = product("disc", (255, 255, 255))
    e = embedder.embed(image, mask)
    assert e.dtype == np.float32 and e.shape == (6,)
    assert np.linalg.norm(e) == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_array_equal(e, embedder.embed(image, mask))  # deterministic


def test_tiny_mobilenet_batches_and_ignores_masked_background(tiny_runtime):
    embedder = create_embedder("mobilenet_v2", tiny_runtime)
    embedder.batch_size = 2  # force several batches
    on_white, mask = product("disc", (255, 255, 255))
    on_noise, _ = product("disc", "noise")
    tall, tall_mask = product("tall", (255, 255, 255))
    images = [on_white, on_noise, tall, on_white, tall]
    masks = [mask, mask, tall_mask, mask, tall_mask]
    batch = embedder.embed_batch(images, masks)
    singles = np.stack([embedder.embed(i, m) for i, m in zip(images, masks, strict=True)])
    np.testing.assert_allclose(batch, singles, atol=1e-5)
    assert float(batch[0] @ batch[1]) > 0.9999


def test_feature_tensor_search_on_a_quantised_graph():
    nodes = [
        helper.make_node("QLinearConv", ["x_q", "s", "z", "w", "s", "z", "s", "z"], ["f_q"]),
        helper.make_node(
            "QLinearGlobalAveragePool",
            ["f_q", "s", "z", "s", "z"],
            ["p_q"],
            domain="com.microsoft",
        ),
        helper.make_node("DequantizeLinear", ["f_q", "s", "z"], ["f_float"]),
    ]
    graph = helper.make_graph(nodes, "q", [], [])
    model = helper.make_model(graph)
    assert find_feature_tensor(model) == "f_float"
    model, name = expose_feature_map(model)
    assert name == "f_float" and model.graph.output[-1].name == "f_float"
    # without the DequantizeLinear, one is added
    del model.graph.node[2]
    del model.graph.output[:]
    model, name = expose_feature_map(model)
    assert name == "staging_feature_map"
    assert model.graph.node[-1].op_type == "DequantizeLinear"


def test_fused_is_the_weighted_cosine(tiny_runtime, handcrafted):
    mobilenet = create_embedder("mobilenet_v2", tiny_runtime)
    weights = {"pooled": 2.0, "classes": 1.0, "handcrafted": 0.5, "silhouette": 0.5}
    fused = FusedEmbedder(mobilenet, handcrafted, weights)
    assert fused.dim == 2 * (mobilenet.dim + 10) + handcrafted.dim  # the tiny net has 10 classes
    a, am = product("disc", (255, 255, 255))
    b, bm = product("tall", (255, 255, 255))
    f = fused.embed_batch([a, b], [am, bm])
    blocks = fused.blocks([a, b], [am, bm])
    expected = sum(w / 4.0 * float(blocks[k][0] @ blocks[k][1]) for k, w in weights.items())
    assert float(f[0] @ f[1]) == pytest.approx(expected, abs=1e-5)
    np.testing.assert_allclose(np.linalg.norm(f, axis=1), 1.0, atol=1e-5)
    assert isinstance(create_embedder("fused", tiny_runtime), FusedEmbedder)
    assert best_available(tiny_runtime) == "fused"
    with pytest.raises(ValueError, match="keys"):
        FusedEmbedder(mobilenet, handcrafted, {"pooled": 1.0, "classes": 1.0, "handcrafted": 1.0})


def test_fused_silhouette_block_sees_only_the_shape(tiny_runtime, handcrafted):
    from staging.embed.fused import SILHOUETTE_GREY, WEIGHTS, silhouette

    assert sum(WEIGHTS.values()) == pytest.approx(1.0)
    image, mask = product("tall", (255, 255, 255))
    sil = silhouette(image, mask)
    assert sil.shape == image.shape and sil.dtype == np.uint8
    assert (sil[mask] == SILHOUETTE_GREY).all() and (sil[~mask] == 255).all()
    assert (silhouette(image, None) == SILHOUETTE_GREY).all()  # no mask: all product
    fused = FusedEmbedder(create_embedder("mobilenet_v2", tiny_runtime), handcrafted)
    recoloured = image.copy()
    recoloured[mask] = (30, 200, 90)  # same outline, other colour and no stripes
    wide, wide_mask = product("wide", (255, 255, 255))
    blocks = fused.blocks([image, recoloured, wide], [mask, mask, wide_mask])
    shape = blocks["silhouette"]
    np.testing.assert_allclose(np.linalg.norm(shape, axis=1), 1.0, atol=1e-5)
    assert float(shape[0] @ shape[1]) > 0.9999  # colour and print do not reach it
    assert float(shape[0] @ shape[2]) < float(shape[0] @ shape[1])  # the outline does
    assert float(blocks["pooled"][0] @ blocks["pooled"][1]) < 0.9999


def test_mobilenet_flip_averages_mirrored_views(tiny_runtime):
    embedder = create_embedder("mobilenet_v2", tiny_runtime)
    image, mask = product("tall", (255, 255, 255))
    image[:, :100] //= 2  # make the left half different from the right
    mirrored = image[:, ::-1].copy()
    flipped = embedder.embed_batch([image, mirrored], [mask, mask[:, ::-1].copy()])
    assert float(flipped[0] @ flipped[1]) > 0.9999
    embedder.flip = False
    plain = embedder.embed_batch([image, mirrored], [mask, mask[:, ::-1].copy()])
    assert float(plain[0] @ plain[1]) < float(flipped[0] @ flipped[1])


def test_mobilenet_averages_two_framings(tiny_runtime):
    from staging.embed.mobilenet_v2 import MARGINS

    embedder = create_embedder("mobilenet_v2", tiny_runtime)
    assert embedder.margins == MARGINS and len(MARGINS) == 2  # tight and loose
    embedder.flip = False  # one view per framing, so the average is exact
    image, mask = product("tall", (255, 255, 255))
    image[:, :100] //= 2
    both = embedder.embed(image, mask)
    singles = []
    for margin in MARGINS:
        embedder.margins = (margin,)
        singles.append(embedder.embed(image, mask))
    assert float(singles[0] @ singles[1]) < 0.9999  # the framings do differ
    np.testing.assert_allclose(both, l2_normalize(singles[0] + singles[1]), atol=1e-5)
    path = tiny_runtime.store.path("mobilenet_v2")
    assert MobileNetV2Embedder(path, margins=0.05).margins == (0.05,)
    with pytest.raises(ValueError, match="margins"):
        MobileNetV2Embedder(path, margins=())
    with pytest.raises(ValueError, match="margins"):
        MobileNetV2Embedder(path, margins=(0.0, -0.1))


def test_embedder_base_defaults():
    class Mean(Embedder):
        name, dim = "mean", 3

        def _embed_one(self, image, mask):
            return image.reshape(-1, 3).mean(axis=0)

    e = Mean().embed_batch([np.full((4, 4, 3), 7, np.uint8)])
    np.testing.assert_allclose(e, l2_normalize(np.array([[7.0, 7, 7]])), atol=1e-6)
    assert Mean().embed_batch([]).shape == (0, 3)


# ------------------------------------------------------------------------ the real weights


@pytest.mark.shared_data
def test_real_mobilenet_v2_pooled_features():
    if not REAL_MOBILENET.exists():
        pytest.skip(f"{REAL_MOBILENET} is absent (real weights are not shipped with the repo)")
    from staging.models import checksum_matches, get_spec

    expected = get_spec("mobilenet_v2").checksums[REAL_MOBILENET.name]
    assert checksum_matches(REAL_MOBILENET, expected)  # the registry names this very file
    runtime = Runtime(ModelStore([REAL_MOBILENET.parent]))
    embedder = create_embedder("mobilenet_v2", runtime)
    assert embedder.dim == 1280
    a, am = product("disc", (255, 255, 255))
    b, _ = product("disc", "noise")
    e = embedder.embed_batch([a, b], [am, am])
    assert e.shape == (2, 1280)
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)
    assert float(e[0] @ e[1]) > 0.999
