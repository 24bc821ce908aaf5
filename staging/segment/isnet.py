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

A product that fills its frame (a pillow, a blind, a photo frame shot edge to edge) has no
outline for the net, which then cannot tell it from the backdrop: its map is empty, or
undecided (values near 0.5) over large areas away from any edge. Only then, and only on a
plain-backdrop photo (the weights-free staged test says so), is the backdrop extended and the
photo seen again (:func:`with_margin`, :func:`needs_margin`). Every other photo is seen as it is, as
the network was trained: a margin shrinks the object in the fixed 1024x1024 input, and thin
parts (poles, legs, wires) vanish. A scene never gets one (around a room a margin makes the
whole photo one object).

Both take a fixed 1024x1024 RGB input (bilinear resize, as the authors' code does), so on a
larger photo the map is upsampled (to the photo's own size, whatever it is) and its edges are
as soft as the upsampling. ``refine`` re-estimates alpha in a narrow band around the net's edge
with pymatting's closed-form matting (Levin et al. 2008) on a trimap taken from the net's map;
the band is as wide as one input pixel of the net at the photo's scale (plus one pixel), which
is exactly the width the upsampling blurred. Parts thinner than that band keep the net's map
(:func:`trimap_from`); on a photo over 2048 px the band is solved at 2048 and only its pixels
take the answer (:func:`refine_at_most`). Each step is measured against the network alone by
``scripts/eval_segment_steps.py`` and ``staging eval segment --compare-plain`` (BENCHMARKS.md).

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
from staging.io import at_most
from staging.segment.base import WORKING_SIDE, Segmenter
from staging.segment.staged import classify_staged
from staging.segment.u2net import _as_rgb

INPUT_SIZE = 1024
NORMALIZATIONS = ("dis", "imgly")  # pixel/255 - 0.5 | (pixel - 128) / 256
REFINEMENTS = ("none", "cf")
# Backdrop added around a plain-backdrop photo that needs it (needs_margin), as a share of its
# longer side (with_margin); chosen on half A of the real IKEA shots (BENCHMARKS.md).
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
        pad: the backdrop margin (share of the longer side) for a plain-backdrop photo whose
            first map calls for one (:func:`needs_margin`); 0 never adds one (the plain net).
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

    # Any photo size: the net sees a fixed 1024x1024 input and its map is enlarged to the photo,
    # as a plain session does; only the refinement is bounded (refine_at_most).
    max_side = None

    @property
    def cache_tag(self) -> str:
        return f"{self.normalization}-{self.refine}-pad{self.pad:g}-when-needed-thin-kept"

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
        pred, framed, margin = self.net_map(image), image.shape[:2], 0
        # A second look with more backdrop only where the first says it could not find the
        # product, and never around a room (the margin would frame the whole photo as one).
        if self.pad > 0 and needs_margin(pred, self.pad) and not classify_staged(image).staged:
            margin = int(round(self.pad * max(image.shape[:2])))
            framed = (image.shape[0] + 2 * margin, image.shape[1] + 2 * margin)
            pred = self.net_map(with_margin(image, margin))
        prob = np.clip(upsample_crop(pred, framed, margin, image.shape), 0, 1)
        if self.refine == "cf" and max(framed) > INPUT_SIZE:  # an upsampled map
            prob = refine_at_most(image, prob, framed)
        return prob.astype(np.float32, copy=False)


def needs_margin(pred: np.ndarray, pad: float) -> bool:
    """Whether a second look with ``pad`` of backdrop around the photo can help the net's map.

    Only when the net was :func:`unsure` and what it did not rule out (its product and its
    undecided pixels) spans more of the frame's height or width than the margin would leave a
    product (``1 / (1 + 2 pad)``: two thirds at 0.25), or it found nothing. A product already
    smaller than that has its outline in the photo: the margin only shrinks it in the net's
    fixed input, so the doubt is about something else (a mirror's glass read as see-through),
    which a smaller view does not settle.
    """
    if not unsure(pred):
        return False
    ys, xs = np.nonzero(pred > 0.25)  # not ruled out: found, or undecided
    if len(ys) == 0 or not (pred >= 0.5).any():
        return True
    extent = max(
        (ys.max() - ys.min() + 1) / pred.shape[0], (xs.max() - xs.min() + 1) / pred.shape[1]
    )
    return bool(extent > 1.0 / (1.0 + 2.0 * pad))


def unsure(pred: np.ndarray) -> bool:
    """Whether the net's map says it could not tell the product from the backdrop.

    A net that found its object answers near 0 or 1 everywhere except across the object's
    outline, where any map has to pass through 0.5. So the map is unsure when it found
    nothing, or when more of its pixels are undecided (closer to 0.5 than to 0 or 1) away from
    its outline than on it: the outline is the one-pixel band either side of the 0.5 contour at
    the net's own resolution. No constant is fitted: the comparison is the map with itself, so
    a thin pole (all outline) or a large sofa (a long outline) is judged alike. On frame-
    filling products the net is undecided over most of the frame (BENCHMARKS.md).
    """
    mask = (pred >= 0.5).astype(np.uint8)
    if not mask.any():
        return True
    one_pixel = np.ones((3, 3), np.uint8)
    outline = cv2.dilate(mask, one_pixel) != cv2.erode(mask, one_pixel)
    undecided = np.abs(2.0 * pred - 1.0) < 0.5
    return bool(np.count_nonzero(undecided & ~outline) > np.count_nonzero(outline))


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
    no outline for the net to find, and IS-Net then answers "no object" (measured:
    BENCHMARKS.md, Segmentation, "real segmentation by default (IS-Net)"); with more backdrop
    around it, it is an object on a page again. The border pixels
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

    Parts thinner than the band (a leg, a wire, a spoke: what an opening by the band removes)
    are no unknown: across them the band would hold no known product colour, so closed-form
    matting would explain them by the background beside them and fade them out (a 3 px leg at
    2000 px lost a fifth of its IoU). They and their surroundings keep the net's map.
    """
    mask = (prob >= 0.5).astype(np.uint8)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * band + 1, 2 * band + 1))
    edge = cv2.dilate(mask, kernel) != cv2.erode(mask, kernel)
    thin = mask > cv2.morphologyEx(mask, cv2.MORPH_OPEN, kernel)
    # The band around a thin part reaches twice the band from its pixels: its own contour's.
    edge &= cv2.dilate(thin.astype(np.uint8), kernel, iterations=2) == 0
    trimap = mask.astype(np.float64)
    trimap[edge] = 0.5
    return trimap


def refine_at_most(
    image: np.ndarray, prob: np.ndarray, framed: tuple[int, ...], max_side: int = WORKING_SIDE
) -> np.ndarray:
    """:func:`refine_edges` on a photo of at most ``max_side`` px; a bigger photo keeps its size.

    The matting's cost follows the outline's length in pixels (at 6000 px five times what it
    is at 2048), so a bigger photo's band is solved on a copy shrunk to ``max_side`` and only
    the band's pixels take that answer, enlarged. Every other pixel keeps the net's map at the
    photo's own size, as the plain session has it: shrinking the whole map instead thinned a
    3 px leg to 2 px and cost IoU against the network alone (BENCHMARKS.md).
    """
    small = at_most(image, max_side)
    if small is image:
        return refine_edges(image, prob, band_for(framed))
    scale = max(small.shape[:2]) / max(image.shape[:2])
    band = band_for(tuple(round(side * scale) for side in framed))
    small_prob = at_most(prob, max_side)
    refined = refine_edges(small, small_prob, band)
    size = (image.shape[1], image.shape[0])
    unknown = (trimap_from(small_prob, band) == 0.5).astype(np.uint8)
    take = cv2.resize(unknown, size, interpolation=cv2.INTER_NEAREST).astype(bool)
    enlarged = cv2.resize(refined.astype(np.float32), size, interpolation=cv2.INTER_LINEAR)
    out = prob.copy()
    out[take] = np.clip(enlarged[take], 0.0, 1.0)
    return out


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
            if not np.isfinite(alpha).all():  # the solver diverged (a zero step): keep the map
                continue
            inner = alpha[y - y0 : y - y0 + TILE, x - x0 : x - x0 + TILE]
            region = out[y : y + TILE, x : x + TILE]
            region[tile_unknown] = np.clip(inner[tile_unknown], 0.0, 1.0)
    return out
