"""MobileNetV2 (ImageNet) pooled features through ONNX Runtime.

The registry model ``mobilenet_v2`` is the ONNX Model Zoo's ``mobilenetv2-12-int8.onnx``: a
classifier with input ``input`` ``[N, 3, 224, 224]`` (RGB / 255, ImageNet mean/std) and output
``output`` ``[N, 1000]`` logits. For retrieval we want the last feature map before global
pooling (``[N, 1280, 7, 7]``), which the file does not expose. At load time we find it (the
input of the graph's last ``GlobalAveragePool``; in a quantised graph, the float tensor that
``DequantizeLinear`` makes of the ``QLinearGlobalAveragePool`` input), add it as a graph output
with the ``onnx`` package, and keep the modified model in memory only (the file on disk is never
touched). The map is then pooled here: generalised-mean (GeM) pooling with ``p = 3`` by default,
a little better than plain averaging for retrieval (Radenovic et al., 2018), then
square-rooted ("power normalisation") and L2-normalised. The same pass gives the ImageNet class
posterior (square-rooted softmax at ``T = 2``), which :mod:`staging.embed.fused` uses as a
semantic block of its own.

Test-time augmentation: each product is run in four views whose unit vectors are averaged:
two framings of the crop, tight (margin 0, the product fills the frame) and loose (margin 0.15
of its longer side), each as is and mirrored left-right. A product's type depends neither on
which way it faces nor on how tightly the photographer framed it, and the two framings show the
network the product at two scales. With two framings instead of one, ``fused``'s P@1 and P@5
rose and no metric fell, on the whole IKEA development half and on each id-hash half alone.
Tried and not kept, as the gain did not hold on both halves: a grey, black or ImageNet-mean
background instead of white; the original background; squashing instead of padding to a
square; a 90 % centre crop; pooling only over the mask; three or four framings (no better
than two, and slower); other softmax temperatures. The cost is four network passes per
product instead of two (measured: BENCHMARKS.md, Retrieval quality (paper's Table 1
metrics)).

The product is embedded with its background removed (:func:`~staging.embed.base.product_crop`):
cropped to the mask's box, padded square, non-product pixels painted white (catalog shots are
white, which is what the network saw most for such products).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from staging.embed.base import WHITE, Embedder, l2_normalize, product_crop
from staging.errors import StagingError

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
INPUT_SIZE = 224
MARGINS = (0.0, 0.15)
"""Crop margins (fraction of the product's longer side) of the framings averaged per product."""

_MODEL_CACHE: dict[tuple[str, int, float, str | None], bytes] = {}
_CACHE_LOCK = threading.Lock()


def find_feature_tensor(model) -> str:
    """Name of the float feature map that the graph's last global average pool reduces.

    Raises :class:`StagingError` when the graph has no global pooling.
    """
    nodes = list(model.graph.node)
    pools = [n for n in nodes if n.op_type in ("GlobalAveragePool", "QLinearGlobalAveragePool")]
    if not pools:
        raise StagingError(
            "The ONNX model has no GlobalAveragePool node, so its pre-pool feature map cannot "
            "be found; pass feature_tensor=... explicitly."
        )
    pool = pools[-1]
    source = pool.input[0]
    if pool.op_type == "GlobalAveragePool":
        return source
    # Quantised graph: the float version of the pool's input is a DequantizeLinear output.
    for node in nodes:
        if node.op_type == "DequantizeLinear" and node.input[0] == source:
            return node.output[0]
    return ""  # caller adds a DequantizeLinear itself


def expose_feature_map(model, feature_tensor: str | None = None) -> tuple[object, str]:
    """Return ``(model, name)`` with the feature map added as a graph output (model modified)."""
    from onnx import TensorProto, helper

    name = feature_tensor or find_feature_tensor(model)
    if not name:
        pool = [n for n in model.graph.node if n.op_type == "QLinearGlobalAveragePool"][-1]
        name = "staging_feature_map"
        model.graph.node.append(
            helper.make_node(
                "DequantizeLinear", list(pool.input[:3]), [name], name="staging_feature_dequant"
            )
        )
    if name not in {o.name for o in model.graph.output}:
        model.graph.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, None))
    return model, name


def _load_modified(path: Path, feature_tensor: str | None) -> tuple[bytes, str]:
    """The serialized model with the feature map exposed, cached in memory by file identity."""
    try:
        import onnx
    except ImportError as exc:  # pragma: no cover - onnx ships with the test extra
        raise StagingError(
            "The mobilenet_v2 embedder needs the onnx package to expose the feature map: "
            "pip install onnx"
        ) from exc
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime, feature_tensor)
    with _CACHE_LOCK:
        cached = _MODEL_CACHE.get(key)
        if cached is not None:
            return cached
        try:
            model = onnx.load(str(path))
        except Exception as exc:  # onnx raises DecodeError and friends
            raise StagingError(f"Could not read the ONNX model {path}: {exc}") from exc
        model, name = expose_feature_map(model, feature_tensor)
        cached = (model.SerializeToString(), name)
        _MODEL_CACHE[key] = cached
        return cached


class MobileNetV2Embedder(Embedder):
    """Pooled pre-classifier features of an ImageNet MobileNetV2 ONNX model (1280-d)."""

    name = "mobilenet_v2"
    version = 2  # 2: four views (two framings, mirrored) instead of two

    def __init__(
        self,
        path: str | Path,
        runtime=None,
        *,
        input_name: str = "input",
        feature_tensor: str | None = None,
        gem_p: float = 3.0,
        power: float = 0.5,
        fill: tuple[int, int, int] = WHITE,
        margins: float | Sequence[float] = MARGINS,
        batch_size: int = 16,
        flip: bool = True,
        temperature: float = 2.0,
    ):
        import onnxruntime as ort

        from staging.runtime import onnx_providers

        self.path = Path(path)
        data, self.feature_tensor = _load_modified(self.path, feature_tensor)
        options = ort.SessionOptions()
        threads = getattr(runtime, "threads", None)
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        device = getattr(runtime, "device", "cpu")
        try:
            self.session = ort.InferenceSession(
                data, sess_options=options, providers=onnx_providers(device)
            )
        except Exception as exc:  # onnxruntime's own Fail/InvalidGraph types
            raise StagingError(f"Could not load the ONNX model {self.path}: {exc}") from exc
        inputs = [i.name for i in self.session.get_inputs()]
        self.input_name = input_name if input_name in inputs else inputs[0]
        self.gem_p = float(gem_p)
        self.power = float(power)
        self.fill = fill
        margins = (margins,) if np.isscalar(margins) else tuple(margins)
        if not margins or min(margins) < 0:
            raise ValueError(f"margins must be one or more non-negative numbers, got {margins}")
        self.margins = tuple(float(m) for m in margins)
        self.batch_size = max(1, int(batch_size))
        self.flip = bool(flip)
        self.temperature = float(temperature)
        outputs = [o.name for o in self.session.get_outputs()]
        self.logits_name = next(o for o in outputs if o != self.feature_tensor)
        shape = self.session.get_inputs()[0].shape
        self.input_size = shape[-1] if isinstance(shape[-1], int) else INPUT_SIZE
        self.dim, self.classes_dim = self._probe_dims()

    def _probe_dims(self) -> tuple[int, int]:
        blank = np.zeros((1, 3, self.input_size, self.input_size), dtype=np.float32)
        names = [self.feature_tensor, self.logits_name]
        fmap, logits = self.session.run(names, {self.input_name: blank})
        return int(fmap.shape[1]), int(np.prod(logits.shape[1:]))

    def preprocess(
        self, image: np.ndarray, mask: np.ndarray | None, margin: float | None = None
    ) -> np.ndarray:
        """``(3, S, S)`` float32 network input for one product framed with ``margin``
        (default: the first of :attr:`margins`)."""
        margin = self.margins[0] if margin is None else margin
        crop = product_crop(image, mask, margin=margin, fill=self.fill)
        rgb = cv2.resize(
            crop.image,
            (self.input_size, self.input_size),
            interpolation=cv2.INTER_AREA
            if crop.image.shape[0] > self.input_size
            else cv2.INTER_LINEAR,
        )
        x = (rgb.astype(np.float32) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
        return np.ascontiguousarray(x.transpose(2, 0, 1))

    def feature_maps(self, batch: np.ndarray) -> np.ndarray:
        """``(N, C, h, w)`` pre-pool feature maps for a preprocessed batch."""
        return self.session.run([self.feature_tensor], {self.input_name: batch})[0]

    def pool(self, fmap: np.ndarray) -> np.ndarray:
        """GeM pooling (``p = 1`` is average pooling) + power normalisation, not yet L2'd."""
        fmap = np.maximum(fmap.astype(np.float32), 0.0)
        if self.gem_p == 1.0:
            pooled = fmap.mean(axis=(2, 3))
        else:
            pooled = np.power(np.power(fmap + 1e-6, self.gem_p).mean(axis=(2, 3)), 1 / self.gem_p)
        if self.power != 1.0:
            pooled = np.power(pooled, self.power)
        return pooled

    def class_scores(self, logits: np.ndarray) -> np.ndarray:
        """Square-rooted softmax at :attr:`temperature` (Hellinger embedding of the posterior)."""
        z = logits.astype(np.float32) / self.temperature
        z = np.exp(z - z.max(axis=1, keepdims=True))
        return np.sqrt(z / z.sum(axis=1, keepdims=True))

    def embed_parts(
        self,
        images: Sequence[np.ndarray],
        masks: Sequence[np.ndarray | None] | None = None,
    ) -> dict[str, np.ndarray]:
        """Both views of the network, each ``(N, .)`` and unit-norm, in one pass:

        * ``pooled``: the pooled pre-classifier features (what :meth:`embed_batch` returns);
        * ``classes``: the ImageNet class posterior (square-rooted softmax), a compact
          semantic summary that :mod:`staging.embed.fused` uses as a block of its own.

        Each product is run once per framing in :attr:`margins` and, with :attr:`flip`
        (default), also mirrored left-right; the views' unit vectors are averaged (see the
        module docstring for why and by how much).
        """
        masks = [None] * len(images) if masks is None else list(masks)
        if len(masks) != len(images):
            raise ValueError(f"{len(images)} images but {len(masks)} masks")
        n = len(images)
        pooled = np.zeros((n, self.dim), dtype=np.float32)
        classes = np.zeros((n, self.classes_dim), dtype=np.float32)
        names = [self.feature_tensor, self.logits_name]
        for start in range(0, n, self.batch_size):
            chunk = range(start, min(start + self.batch_size, n))
            k = len(chunk)
            batch = np.stack(
                [self.preprocess(images[i], masks[i], m) for m in self.margins for i in chunk]
            )
            if self.flip:
                batch = np.concatenate([batch, batch[..., ::-1]])
            fmap, logits = self.session.run(names, {self.input_name: batch})
            p = l2_normalize(self.pool(fmap))
            c = l2_normalize(self.class_scores(logits.reshape(len(batch), -1)))
            # views are stacked view-major: (views * k, d) -> sum over views
            pooled[start : start + k] = p.reshape(-1, k, p.shape[1]).sum(axis=0)
            classes[start : start + k] = c.reshape(-1, k, c.shape[1]).sum(axis=0)
        return {"pooled": l2_normalize(pooled), "classes": l2_normalize(classes)}

    def embed_batch(
        self,
        images: Sequence[np.ndarray],
        masks: Sequence[np.ndarray | None] | None = None,
    ) -> np.ndarray:
        return self.embed_parts(images, masks)["pooled"]


def create(runtime, **options) -> MobileNetV2Embedder:
    """Factory for the registry: the ``mobilenet_v2`` model from the runtime's model store."""
    return MobileNetV2Embedder(runtime.store.path("mobilenet_v2"), runtime, **options)
