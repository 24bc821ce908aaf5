"""Aspect-ratio buckets: one generation serves many ad sizes (Czapp et al., seed 001).

Generating a background costs seconds of GPU time, and a catalog is shown in many placements
(the seed's system serves a few thousand resolutions). Instead of one generation per
``(product, size)``, the seed generates **one image per bucket** and *crops and resizes* it for
every target size that falls in the bucket ("number of potential requests is lowered by two
orders of magnitude").

**Bucket definition (seed 001, "Bucketing").** The base aspect ratio is the product's bounding
box. For a target size, the layout (target resolution + fill ratio + positioning, here
:func:`staging.compose.placement.layout`) leaves a padding ``P_D`` between the product's box
and the canvas edge in each direction ``D in {T, R, B, L}``. The bucket is the tuple
``(B_T, B_R, B_B, B_L, r)`` with

    B_D = ceil( log_r( (P_D + D) / D ) )

where, in the fraction, ``D`` stands for the product box's extent along that direction's axis
(its height for ``T`` and ``B``, its width for ``L`` and ``R``) and ``r > 1`` is the increment
ratio: bin thresholds grow by ``r`` (``r = 1.2``: each threshold 20% above the previous one).
``(P_D + D) / D`` is the product's extent *plus* that side's padding, relative to the product's
extent — scale-free, so the same layout at 300x250 and at 1200x1000 gives the same bucket, and
only the product's aspect ratio (with the placement, fill, alignment and margin) matters.

**Generation canvas.** Rounding *up* makes the bucket's canvas big enough for every member: a
bucket pads the product by ``D * (r ** B_D - 1)`` on side ``D`` (:func:`bucket_canvas`), at
least the ``P_D`` (scaled) of any target in the bucket, so every target is a crop of it
(:func:`crop_for_placement`), with the product on exactly the pixels
:func:`~staging.compose.placement.place_on_canvas` would use. The price of a coarser ``r`` is
resolution: a target's crop uses at most ``1 / r`` of the generation along each padded side.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from staging.compose.placement import (
    DEFAULT_ALIGN,
    DEFAULT_FILL,
    DEFAULT_MARGIN,
    Placement,
    get_placement,
    layout,
)
from staging.errors import StagingError

DEFAULT_R = 1.2
"""The seed's example increment ratio: bin thresholds 20% apart."""

_EPS = 1e-9  # (P + D) / D exactly on a threshold r**k stays in bin k despite float rounding

PlacementSpec = str | tuple[int, int] | Placement


@dataclass(frozen=True)
class Bucket:
    """``(B_T, B_R, B_B, B_L, r)``: the bin of each side's relative padding (see module doc)."""

    top: int
    right: int
    bottom: int
    left: int
    r: float

    def __post_init__(self) -> None:
        if not (self.r > 1.0 and math.isfinite(self.r)):
            raise StagingError(f"The bucket ratio r must be a number above 1, not {self.r}.")
        if min(self.top, self.right, self.bottom, self.left) < 0:
            raise StagingError(f"Bucket bins cannot be negative: {self}.")

    @property
    def bins(self) -> tuple[int, int, int, int]:
        """``(B_T, B_R, B_B, B_L)``."""
        return self.top, self.right, self.bottom, self.left

    @property
    def key(self) -> str:
        """A stable short name, e.g. ``"T3-R5-B3-L5-r1.2"`` (file names, cache keys, logs)."""
        return f"T{self.top}-R{self.right}-B{self.bottom}-L{self.left}-r{self.r:g}"

    def ratios(self) -> tuple[float, float, float, float]:
        """Upper bin thresholds ``r ** B_D``: the largest ``(P_D + D) / D`` each side holds."""
        return tuple(self.r**b for b in self.bins)  # type: ignore[return-value]

    def covers(self, other: Bucket) -> bool:
        """True when this bucket's canvas contains every crop of ``other``'s (same ``r``, every
        bin at least as large): one generation of ``self`` can serve ``other``'s targets."""
        return self.r == other.r and all(a >= b for a, b in zip(self.bins, other.bins, strict=True))


def bucket_index(padding: float, extent: float, r: float = DEFAULT_R) -> int:
    """``B_D = ceil(log_r((P_D + D) / D))`` for one side: padding ``P_D``, product extent ``D``."""
    if extent <= 0:
        raise StagingError(f"The product's extent must be positive, not {extent}.")
    if padding < 0:
        raise StagingError(f"A padding cannot be negative ({padding}): the box leaves the canvas.")
    if not (r > 1.0 and math.isfinite(r)):
        raise StagingError(f"The bucket ratio r must be a number above 1, not {r}.")
    return max(0, math.ceil(math.log((padding + extent) / extent) / math.log(r) - _EPS))


def bucket_for(
    box: tuple[int, int, int, int],
    canvas: PlacementSpec,
    r: float = DEFAULT_R,
) -> Bucket:
    """The bucket of a product whose bounding box is ``box = (x0, y0, x1, y1)`` in the target
    ``canvas`` (any placement spec): paddings ``P_T = y0``, ``P_R = W - x1``, ``P_B = H - y1``,
    ``P_L = x0``; extents ``h = y1 - y0`` for T/B and ``w = x1 - x0`` for L/R."""
    width, height = get_placement(canvas).size
    x0, y0, x1, y1 = (float(v) for v in box)
    if not (0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height):
        raise StagingError(f"The product box {box} is not a non-empty box inside {width}x{height}.")
    w, h = x1 - x0, y1 - y0
    return Bucket(
        top=bucket_index(y0, h, r),
        right=bucket_index(width - x1, w, r),
        bottom=bucket_index(height - y1, h, r),
        left=bucket_index(x0, w, r),
        r=float(r),
    )


def bucket_for_placement(
    product_size: tuple[int, int],
    placement: PlacementSpec,
    fill: float = DEFAULT_FILL,
    align: str = DEFAULT_ALIGN,
    margin: float = DEFAULT_MARGIN,
    r: float = DEFAULT_R,
) -> Bucket:
    """The bucket of a product (bounding box ``product_size = (w, h)``) laid out in
    ``placement`` the way :func:`~staging.compose.placement.place_on_canvas` lays it out."""
    spot = layout(product_size, placement, fill=fill, align=align, margin=margin)
    x0, y0, x1, y1 = spot.box
    top, right, bottom, left = spot.padding
    w, h = x1 - x0, y1 - y0
    return Bucket(
        top=bucket_index(top, h, r),
        right=bucket_index(right, w, r),
        bottom=bucket_index(bottom, h, r),
        left=bucket_index(left, w, r),
        r=float(r),
    )


@dataclass(frozen=True)
class BucketCanvas:
    """The generation canvas of a bucket: ``width x height`` with the product's box at
    ``box = (x0, y0, x1, y1)``."""

    bucket: Bucket
    width: int
    height: int
    box: tuple[int, int, int, int]

    @property
    def size(self) -> tuple[int, int]:
        return self.width, self.height

    @property
    def product_size(self) -> tuple[int, int]:
        x0, y0, x1, y1 = self.box
        return x1 - x0, y1 - y0


def bucket_canvas(bucket: Bucket, product_size: tuple[int, int], multiple: int = 8) -> BucketCanvas:
    """The canvas to generate for ``bucket`` with the product ``product_size = (w, h)`` pixels
    big in it: padding ``ceil(D * (r ** B_D - 1))`` on each side ``D`` (the bin's upper
    threshold, so every target of the bucket is a crop), then grown to a multiple of
    ``multiple`` (Stable Diffusion's latent grid is 8 pixels; growing only adds room, split
    between the two sides)."""
    pw, ph = (int(v) for v in product_size)
    if pw < 1 or ph < 1:
        raise StagingError(f"The product size {product_size} must be at least 1x1 pixels.")
    if multiple < 1:
        raise StagingError(f"multiple must be a positive number of pixels, not {multiple}.")
    rt, rr, rb, rl = bucket.ratios()
    top, bottom = _pad(ph, rt), _pad(ph, rb)
    left, right = _pad(pw, rl), _pad(pw, rr)
    width, height = left + pw + right, top + ph + bottom
    extra_w, extra_h = -width % multiple, -height % multiple
    left, top = left + extra_w // 2, top + extra_h // 2
    return BucketCanvas(
        bucket=bucket,
        width=width + extra_w,
        height=height + extra_h,
        box=(left, top, left + pw, top + ph),
    )


def _pad(extent: int, ratio: float) -> int:
    return max(0, math.ceil(extent * (ratio - 1.0) - 1e-6))


def fit_product_size(
    bucket: Bucket,
    aspect: float,
    max_pixels: int = 1024 * 1024,
    max_side: int | None = None,
    multiple: int = 8,
) -> tuple[int, int]:
    """The largest product size ``(w, h)`` with ``w / h ≈ aspect`` whose
    :func:`bucket_canvas` stays within ``max_pixels`` (and ``max_side``): how big to draw the
    product in a generation, given the model's pixel budget."""
    if not (aspect > 0 and math.isfinite(aspect)):
        raise StagingError(f"The product aspect ratio must be positive, not {aspect}.")
    rt, rr, rb, rl = bucket.ratios()
    grow_w, grow_h = rl + rr - 1.0, rt + rb - 1.0
    # canvas ≈ (w * grow_w) x (h * grow_h) with w = aspect * h
    h = math.sqrt(max_pixels / (aspect * grow_w * grow_h))
    if max_side is not None:
        h = min(h, max_side / grow_h, max_side / (aspect * grow_w))
    for _ in range(10_000):
        size = (max(1, int(aspect * h)), max(1, int(h)))
        canvas = bucket_canvas(bucket, size, multiple)
        side_ok = max_side is None or max(canvas.size) <= max_side
        if (canvas.width * canvas.height <= max_pixels and side_ok) or h <= 1:
            return size
        h *= 0.99
    return size


def crop_for_placement(
    generated: np.ndarray,
    canvas: BucketCanvas,
    placement: PlacementSpec,
    product_size: tuple[int, int] | None = None,
    fill: float = DEFAULT_FILL,
    align: str = DEFAULT_ALIGN,
    margin: float = DEFAULT_MARGIN,
) -> np.ndarray:
    """Crop and resize a bucket's generation to ``placement``, the product's box landing on
    the box :func:`~staging.compose.placement.layout` (hence ``place_on_canvas``) gives.

    ``generated`` may be any resolution with ``canvas``'s aspect (the canvas coordinates are
    scaled to it). ``product_size`` is the product's bounding box in the *source* image (the
    layout's input; :attr:`PlacedProduct.product_size`); by default the canvas box's size.
    The mapping is one exact scale-and-shift (``cv2.warpAffine``), anti-aliased with a Gaussian
    pre-blur when shrinking, so sub-pixel rounding never drifts the product off its box.
    Raises :class:`StagingError` when the placement needs more room than the canvas has (it
    belongs to a bigger bucket).
    """
    image = np.asarray(generated)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise StagingError(
            f"The generated image must be RGB uint8 (H, W, 3), not {image.dtype} {image.shape}."
        )
    target = get_placement(placement)
    width, height = target.size
    spot = layout(
        product_size or canvas.product_size, target, fill=fill, align=align, margin=margin
    )
    tx0, ty0, tx1, ty1 = spot.box
    gh, gw = image.shape[:2]
    sx, sy = gw / canvas.width, gh / canvas.height
    gx0, gy0, gx1, gy1 = (
        canvas.box[0] * sx,
        canvas.box[1] * sy,
        canvas.box[2] * sx,
        canvas.box[3] * sy,
    )
    kx, ky = (tx1 - tx0) / (gx1 - gx0), (ty1 - ty0) / (gy1 - gy0)
    # the target canvas in generation pixels
    cx0, cx1 = gx0 - tx0 / kx, gx0 + (width - tx0) / kx
    cy0, cy1 = gy0 - ty0 / ky, gy0 + (height - ty0) / ky
    slack = 1.0 + max(sx, sy)  # integer rounding of the canvas padding
    if cx0 < -slack or cy0 < -slack or cx1 > gw + slack or cy1 > gh + slack:
        raise StagingError(
            f"Placement {target.name} ({width}x{height}) does not fit in the generation of bucket "
            f"{canvas.bucket.key}: it needs bucket "
            f"{bucket_for(spot.box, target, canvas.bucket.r).key}."
        )
    ix0, iy0 = max(0, math.floor(cx0) - 2), max(0, math.floor(cy0) - 2)
    ix1, iy1 = min(gw, math.ceil(cx1) + 2), min(gh, math.ceil(cy1) + 2)
    roi = image[iy0:iy1, ix0:ix1]
    shrinking = kx < 1.0 or ky < 1.0
    if shrinking:
        sigma_x, sigma_y = max(0.0, (1.0 / kx - 1.0) / 2.0), max(0.0, (1.0 / ky - 1.0) / 2.0)
        if max(sigma_x, sigma_y) > 0.05:
            roi = cv2.GaussianBlur(
                roi,
                (0, 0),
                sigmaX=max(sigma_x, 1e-3),
                sigmaY=max(sigma_y, 1e-3),
                borderType=cv2.BORDER_REPLICATE,
            )
    # dst = k * (src - g0) + t0 in edge coordinates; OpenCV indexes pixel centres (+0.5).
    matrix = np.array(
        [
            [kx, 0.0, tx0 - kx * (gx0 - ix0) + 0.5 * kx - 0.5],
            [0.0, ky, ty0 - ky * (gy0 - iy0) + 0.5 * ky - 0.5],
        ],
        np.float64,
    )
    return cv2.warpAffine(
        roi,
        matrix,
        (width, height),
        flags=cv2.INTER_LINEAR if shrinking else cv2.INTER_CUBIC,
        borderMode=cv2.BORDER_REPLICATE,
    )


# --------------------------------------------------------------------------------------------
# Planning
# --------------------------------------------------------------------------------------------


@dataclass
class GenerationPlan:
    """Which generations serve ``products x placements``.

    Attributes:
        placements: the placements, resolved.
        assignments: ``(product_id, placement_name) -> Bucket``: the generation that serves it.
        generations: ``product_id -> [Bucket, ...]``: the distinct generations per product.
        without_buckets: ``len(products) * len(placements)`` (one generation per target).
        with_buckets: total generations with buckets.
    Prompts and seeds multiply both counts alike, so they are left out.
    """

    placements: list[Placement]
    assignments: dict[tuple[object, str], Bucket] = field(default_factory=dict)
    generations: dict[object, list[Bucket]] = field(default_factory=dict)

    @property
    def without_buckets(self) -> int:
        return len(self.generations) * len(self.placements)

    @property
    def with_buckets(self) -> int:
        return sum(len(b) for b in self.generations.values())

    @property
    def saving(self) -> float:
        """Share of generations saved (``1 - with / without``)."""
        return 1.0 - self.with_buckets / self.without_buckets if self.without_buckets else 0.0

    @property
    def reduction(self) -> float:
        """``without / with``: how many targets one generation serves on average."""
        return self.without_buckets / self.with_buckets if self.with_buckets else 0.0


def plan_generations(
    products: Sequence[tuple[int, int]] | Mapping[object, tuple[int, int]],
    placements: Iterable[PlacementSpec],
    fill: float = DEFAULT_FILL,
    align: str = DEFAULT_ALIGN,
    margin: float = DEFAULT_MARGIN,
    r: float = DEFAULT_R,
    merge: float | None = None,
) -> GenerationPlan:
    """Bucket every ``(product, placement)`` pair: one generation per distinct bucket of a
    product (the seed's scheme), versus one per pair without buckets.

    ``products`` are product bounding-box sizes ``(w, h)`` — a sequence (ids are the indices)
    or a mapping ``id -> (w, h)``.

    ``merge`` (an extension of the seed, off by default) is the largest canvas-area growth
    accepted to save a generation: a bucket whose canvas another bucket of the same product
    contains (:meth:`Bucket.covers`) with at most ``merge`` times its area is served by that
    generation instead of its own. The bound matters: without it one very wide bucket would
    "serve" a square ad from a sliver of its pixels, i.e. at a fraction of the resolution.
    """
    if merge is not None and not merge >= 1.0:
        raise StagingError(f"merge is a canvas-area growth factor (>= 1), not {merge}.")
    items = list(products.items()) if isinstance(products, Mapping) else list(enumerate(products))
    resolved = [get_placement(p) for p in placements]
    if not resolved:
        raise StagingError("plan_generations needs at least one placement.")
    names = [p.name for p in resolved]
    if len(set(names)) != len(names):
        raise StagingError(f"Placements are listed twice: {names}.")
    plan = GenerationPlan(placements=resolved)
    for pid, size in items:
        own = {
            p.name: bucket_for_placement(size, p, fill=fill, align=align, margin=margin, r=r)
            for p in resolved
        }
        distinct = list(dict.fromkeys(own.values()))
        serve = _merged(distinct, merge) if merge is not None else {b: b for b in distinct}
        for name, bucket in own.items():
            plan.assignments[(pid, name)] = serve[bucket]
        plan.generations[pid] = list(dict.fromkeys(serve.values()))
    return plan


def canvas_area(bucket: Bucket) -> float:
    """The bucket canvas's area relative to the product box's (``w * h = 1``)."""
    rt, rr, rb, rl = bucket.ratios()
    return (rl + rr - 1.0) * (rt + rb - 1.0)


def _merged(buckets: list[Bucket], growth: float) -> dict[Bucket, Bucket]:
    """Greedy cover: the largest buckets are generated; each other bucket is served by the
    smallest generated bucket that covers it within ``growth`` x its area, else generated."""
    serve: dict[Bucket, Bucket] = {}
    generated: list[Bucket] = []
    for bucket in sorted(buckets, key=canvas_area, reverse=True):
        limit = growth * canvas_area(bucket) * (1 + 1e-9)
        hosts = [g for g in generated if g.covers(bucket) and canvas_area(g) <= limit]
        host = min(hosts, key=canvas_area) if hosts else bucket
        if host is bucket:
            generated.append(bucket)
        serve[bucket] = host
    return serve


def crop_share(bucket: Bucket, box: tuple[int, int, int, int], canvas: PlacementSpec) -> float:
    """Share of ``bucket``'s generation canvas (before rounding to a multiple of 8) that the
    crop for a target with product ``box`` in ``canvas`` uses: the resolution price of serving
    that target from this bucket (1.0 = every generated pixel is used)."""
    width, height = get_placement(canvas).size
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    rt, rr, rb, rl = bucket.ratios()
    return (width / w) / (rl + rr - 1.0) * (height / h) / (rt + rb - 1.0)
