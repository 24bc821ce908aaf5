"""IS-Net (DIS, Qin et al., ECCV 2022) on ONNX Runtime: the default segmenter.

Two files of the same network are in the registry, and they differ in what they expect:

===========================  =====================  ==========================================
registry name                input x                output
===========================  =====================  ==========================================
``isnet-general-use``        pixel/255 - 0.5         logits-like map, min-max normalised (as the
(rembg's fp32 export)                                authors' and rembg's code do)
``isnet-general-fp16``       (pixel - 128) / 256     already in [0, 1]: used as it is
(imgly's fp16 build)
===========================  =====================  ==========================================

A product that fills its frame (a pillow or a blind shot edge to edge) has no outline for the
net, which then answers "no object" (IoU 0 on such real IKEA shots): a plain-backdrop photo
(the weights-free staged test says so) gets its backdrop extended first (:func:`with_margin`);
a scene never does (around a room a margin makes the whole photo one object).

Both take a fixed 1024x1024 RGB input (bilinear resize, as the authors' code does), so on a
larger photo the map is upsampled and its edges are as soft as the upsampling. ``refine``
re-estimates alpha in a narrow band around the net's edge at the photo's own resolution with
pymatting's closed-form matting (Levin et al. 2008) on a trimap taken from the net's map; the
band is as wide as one input pixel of the net at the photo's scale (plus one pixel), which is
exactly the width the upsampling blurred. Whether to refine was decided by boundary F on real
photos enlarged past 1024 px (BENCHMARKS.md, session 8, "Edge refinement"), not tuned.

Speed: the fp16 file's weights are cast to fp32 once at load and its Cast nodes made no-ops
(:func:`fp32_graph`), which ONNX Runtime's CPU kernels run faster than the mixed graph, with
the same output to 1e-5.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import cv2
import numpy as np

from staging.errors import StagingError
from staging.segment.base import Segmenter
from staging.segment.staged import classify_staged
from staging.segment.u2net import _as_rgb

INPUT_SIZE = 1024
NORMALIZATIONS = ("dis", "imgly")  # pixel/255 - 0.5 | (pixel - 128) / 256
REFINEMENTS = ("none", "cf")
# Backdrop added around a plain-backdrop photo, as a share of its longer side (with_margin):
# 0.25 chosen over 0.1 and none on half A of the real IKEA shots (IoU 0.936 / 0.926 / 0.888);
# BENCHMARKS.md reports half B.
CONTEXT_PAD = 0.25


def fp32_graph(path: str | Path) -> bytes:
    """The ONNX model at ``path`` with every fp16 weight and Cast made fp32 (serialised).

    ONNX Runtime's CPU execution provider has fp32 kernels only for most ops, so an fp16 graph
    runs as casts around fp32 work; converting once at load removes them.
    """
    import onnx
    from onnx import TensorProto, numpy_helper

    model = onnx.load(str(path))

    def to_fp32(tensor) -> None:
        if tensor.data_type == TensorProto.FLOAT16:
            array = numpy_helper.to_array(tensor).astype(np.float32)
            tensor.CopyFrom(numpy_helper.from_array(array, tensor.name))

    for init in model.graph.initializer:
        to_fp32(init)
    for node in model.graph.node:
        for attr in node.attribute:
            if node.op_type == "Cast" and attr.name == "to" and attr.i == TensorProto.FLOAT16:
                attr.i = TensorProto.FLOAT
            elif attr.name == "value" and attr.type == onnx.AttributeProto.TENSOR:
                to_fp32(attr.t)
    for info in [*model.graph.value_info, *model.graph.output]:
        if info.type.tensor_type.elem_type == TensorProto.FLOAT16:
            info.type.tensor_type.elem_type = TensorProto.FLOAT
    return model.SerializeToString()


class IsNetSegmenter(Segmenter):
    """IS-Net on an ONNX Runtime session.

    Args:
        session: an ``onnxruntime.InferenceSession`` (stateless ``run``: thread-safe).
        name: the backend name reported in results.
        normalization: ``dis`` (rembg's fp32 file) or ``imgly`` (the fp16 file).
        refine: ``cf`` re-estimates alpha at the photo's resolution in the band the upsampling
            blurred (closed-form matting); ``none`` keeps the upsampled map.
    """

    def __init__(
        self,
        session,
        name: str,
        normalization: str = "dis",
        refine: str = "cf",
        pad: float = CONTEXT_PAD,
    ):
        if normalization not in NORMALIZATIONS:
            raise ValueError(f"normalization must be one of {NORMALIZATIONS}")
        if refine not in REFINEMENTS:
            raise ValueError(f"refine must be one of {REFINEMENTS}")
        inputs, outputs = session.get_inputs(), session.get_outputs()
        if not inputs or not outputs:
            raise StagingError(f"The ONNX model for {name!r} has no inputs or no outputs.")
        self.session = session
        self.name = name
        self.normalization = normalization
        self.refine = refine
        self.pad = pad
        self.input_name = inputs[0].name
        names = [o.name for o in outputs]
        self.output_name = "output" if "output" in names else names[0]  # not the side outputs

    @property
    def cache_tag(self) -> str:
        return f"{self.normalization}-{self.refine}-pad{self.pad:g}"

    def preprocess(self, image: np.ndarray) -> np.ndarray:
        """RGB uint8 HxWx3 -> the 1x3x1024x1024 float32 input."""
        size = (INPUT_SIZE, INPUT_SIZE)
        x = cv2.resize(image.astype(np.float32), size, interpolation=cv2.INTER_LINEAR)
        x = x / 255.0 - 0.5 if self.normalization == "dis" else (x - 128.0) / 256.0
        return np.ascontiguousarray(x.transpose(2, 0, 1)[None], dtype=np.float32)

    def net_map(self, image: np.ndarray) -> np.ndarray:
        """The network's own 1024x1024 map in [0, 1]."""
        out = self.session.run([self.output_name], {self.input_name: self.preprocess(image)})[0]
        pred = np.asarray(out, dtype=np.float32).reshape(out.shape[-2:])
        if self.normalization == "dis":
            lo, hi = float(pred.min()), float(pred.max())
            return (pred - lo) / (hi - lo) if hi - lo > 1e-8 else np.clip(pred, 0.0, 1.0)
        return np.clip(pred, 0.0, 1.0)

    def predict(self, image: np.ndarray) -> np.ndarray:
        image = _as_rgb(image)
        height, width = image.shape[:2]
        # Only a plain backdrop is extended: around a room the margin would frame the whole
        # photo as one object.
        plain = self.pad > 0 and not classify_staged(image).staged
        margin = int(round(self.pad * max(height, width))) if plain else 0
        framed = with_margin(image, margin)
        prob = np.clip(upsample_crop(self.net_map(framed), framed.shape, margin, image.shape), 0, 1)
        if self.refine == "cf" and max(framed.shape[:2]) > INPUT_SIZE:  # an upsampled map
            prob = refine_edges(image, prob, band_for(framed.shape))
        return prob.astype(np.float32, copy=False)


def upsample_crop(
    pred: np.ndarray, framed: tuple[int, ...], margin: int, shape: tuple[int, ...]
) -> np.ndarray:
    """The net's map resized to the framed photo (bilinear, as ``cv2.resize``) and cropped to
    the photo, computed for the photo's pixels only: at 6000 px a full-size map of the framed
    photo would be a 9000x9000 float array."""
    sy, sx = pred.shape[0] / framed[0], pred.shape[1] / framed[1]
    to_map = np.array(
        [[sx, 0.0, (margin + 0.5) * sx - 0.5], [0.0, sy, (margin + 0.5) * sy - 0.5]], np.float64
    )
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    return cv2.warpAffine(
        pred, to_map, (shape[1], shape[0]), flags=flags, borderMode=cv2.BORDER_REPLICATE
    )


def with_margin(image: np.ndarray, margin: int) -> np.ndarray:
    """The photo with its backdrop extended by ``margin`` px on every side.

    A product that fills the frame (a pillow, a blind, a panel photographed edge to edge) has
    no outline for the net to find, and IS-Net then answers "no object" (IoU 0 on such IKEA
    shots); with more backdrop around it, it is an object on a page again. The border pixels
    are repeated outwards, so a vignette or a gradient sweep continues without the step a
    constant colour makes (with a constant margin IS-Net took a vignetted shot's whole frame
    for the object).
    """
    if margin <= 0:
        return image
    return cv2.copyMakeBorder(image, margin, margin, margin, margin, cv2.BORDER_REPLICATE)


def band_for(shape: tuple[int, ...]) -> int:
    """Half-width (px) of the band the upsampling blurred: one net pixel at the photo's scale."""
    return int(np.ceil(max(shape[:2]) / INPUT_SIZE)) + 1


def trimap_from(prob: np.ndarray, band: int) -> np.ndarray:
    """0 (background), 1 (product) and 0.5 (unknown) from an upsampled map.

    Unknown: a band of ``band`` px on both sides of the map's 0.5 contour, where the
    upsampling mixed product and background. Elsewhere the net's map stands, soft or not.
    """
    mask = (prob >= 0.5).astype(np.uint8)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * band + 1, 2 * band + 1))
    edge = cv2.dilate(mask, kernel) != cv2.erode(mask, kernel)
    trimap = mask.astype(np.float64)
    trimap[edge] = 0.5
    return trimap


TILE = 128  # px solved at a time: the Laplacian is built for tiles that hold unknown pixels only


def refine_edges(image: np.ndarray, prob: np.ndarray, band: int) -> np.ndarray:
    """Closed-form matting in the unknown band of :func:`trimap_from`; the rest is kept.

    Solved tile by tile (each tile with a margin of known context), and only for tiles that
    hold unknown pixels, so the cost follows the outline's length, not the photo's area.
    """
    from pymatting import estimate_alpha_cf

    trimap = trimap_from(prob, band)
    unknown = trimap == 0.5
    out = prob.copy()
    height, width = prob.shape
    margin = band + 4
    rgb = image.astype(np.float64) / 255.0
    for y in range(0, height, TILE):
        for x in range(0, width, TILE):
            tile_unknown = unknown[y : y + TILE, x : x + TILE]
            if not tile_unknown.any():
                continue
            y0, x0 = max(0, y - margin), max(0, x - margin)
            y1, x1 = min(height, y + TILE + margin), min(width, x + TILE + margin)
            local = trimap[y0:y1, x0:x1]
            if not (local == 1.0).any() or not (local == 0.0).any():
                continue  # no product or no background to anchor the solve: keep the net's map
            try:
                # pymatting prints a "PERFORMANCE WARNING" to stdout whenever its incomplete
                # Cholesky needs a diagonal shift (it then retries): not the user's concern.
                with contextlib.redirect_stdout(io.StringIO()):
                    alpha = estimate_alpha_cf(rgb[y0:y1, x0:x1], local)
            except (ValueError, ArithmeticError, np.linalg.LinAlgError):
                continue
            inner = alpha[y - y0 : y - y0 + TILE, x - x0 : x - x0 + TILE]
            region = out[y : y + TILE, x : x + TILE]
            region[tile_unknown] = np.clip(inner[tile_unknown], 0.0, 1.0)
    return out
