"""Prompt-based and vanilla staging: Taboola's five-step background-generation pipeline.

For one product (RGB + alpha, step 1 is the caller's segmentation), every ad placement and
every seed:

2. **Position and scale** the product for the placement
   (:func:`staging.compose.placement.place_product`: fill ratio, alignment, margin). As in
   the seed, the generation is not made per placement but per *bucket*
   (:mod:`staging.compose.buckets`): the product is drawn once on the bucket's canvas, at the
   generator's pixel budget, and each placement of the bucket is a crop of that generation.
3. **Edges**: Canny on the placed product, reinforced with the mask contour
   (:mod:`staging.generate.edges`), for the ControlNet backends.
4. **Generate** the background (:class:`~staging.generate.base.Generator`), looked up first
   in the optional :class:`~staging.generate.cache.GenerationCache` (key: product hash,
   prompt, bucket, seed, model and the settings that change pixels).
5. **Cut back** the original product, resampled by ``place_product`` only, with edges
   feathered by about a pixel (:func:`staging.compose.blend.feather`): wherever the product
   is solid its pixels are the placed product's, bit for bit, whatever the generator did.

Each result is a :class:`~staging.result.Staged` with ``ssim`` (product region against the
placed product; exactly 1.0 for an exact cut-back) and ``scores["object_expansion"]``
(:func:`object_expansion`: how much the generated background continues the product outside
its mask, the inpainting artefact ControlNet conditioning is there to prevent).

*Vanilla* staging is the same pipeline with no scene prompt: the category alone ("a photo of
a sofa") or nothing, i.e. the background is whatever the generator paints around the product.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from staging.compose.blend import composite, feather, product_ssim
from staging.compose.buckets import (
    DEFAULT_R,
    Bucket,
    BucketCanvas,
    bucket_canvas,
    bucket_for_placement,
    crop_for_placement,
    crop_share,
    fit_product_size,
)
from staging.compose.placement import (
    DEFAULT_ALIGN,
    DEFAULT_FILL,
    DEFAULT_MARGIN,
    MIN_SIDE,
    Placement,
    get_placement,
    layout,
    place_product,
    product_bbox,
)
from staging.errors import StagingError
from staging.generate.base import GenerationRequest, Generator
from staging.generate.edges import control_image
from staging.result import Staged

PIPELINE_VERSION = 1
"""Part of every cache key: bump it when a change here alters generated pixels."""

DEFAULT_PLACEMENT = "square"
DEFAULT_PIXEL_BUDGET = 1024 * 1024
"""Generation canvas size (pixels) for generators without a native resolution (``studio``)."""

EXPANSION_SIDE = 200
""":func:`object_expansion` works at about this many pixels across the product."""

GENERATION_SHARE = 0.95
"""Share of the progress bar given to generation (the cut-back and scores take the rest)."""

StageProgress = Callable[[float, str], None]
"""``progress(fraction, message)``, the engine's convention for long calls."""

PlacementSpec = str | tuple[int, int] | Placement


# -- prompts --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PromptChoice:
    """The text a generation runs with, and where it came from (for provenance)."""

    prompt: str
    negative: str
    theme: str | None = None
    category: str | None = None


def choose_prompt(
    mode: str,
    prompt: str | None = None,
    theme: str | int | None = None,
    category: str | None = None,
    negative_prompt: str | None = None,
    library=None,
    extra: str | None = None,
) -> PromptChoice:
    """The prompt for a staging call.

    * An explicit ``prompt`` is used as it is (both modes).
    * ``prompt`` mode: ``theme`` names a theme of the category in the prompt library
      (``staging/assets/prompts.yaml``, :mod:`staging.generate.prompts`) or is its index; any other
      ``theme`` is a scene: a key of the library's ``interests`` ("beach", "christmas": its
      scene fragment) or free text ("a sunny terrace at dusk"); with neither, the
      category's first theme.
    * ``vanilla`` mode: no scene — ``"a photo of a <category noun>"`` when a category is
      given, else the empty (unconditional) prompt.

    ``extra`` (e.g. a personalisation fragment) is appended to library and scene prompts.
    The negative prompt is ``negative_prompt`` if given, else the library's (with the theme's).
    """
    if mode not in ("prompt", "vanilla"):
        raise StagingError(f"mode must be 'prompt' or 'vanilla', not {mode!r}.")
    if library is None:
        from staging.generate.prompts import load_library

        library = load_library()
    noun = product_noun(library, category)
    chosen_theme: str | None = None
    if prompt is not None and prompt.strip():
        text, negative = prompt.strip(), library.negative
    elif mode == "vanilla":
        text, negative = (f"a photo of a {noun}" if category else ""), library.negative
    else:
        names = [t.name for t in library.themes(category)]
        if theme is None or isinstance(theme, int) or theme in names:
            picked = library.theme(category, 0 if theme is None else theme)
            chosen_theme = picked.name
            text, negative = library.fill(category, picked.name, product=noun, extra=extra)
            extra = None
        else:
            chosen_theme = str(theme).strip()
            scene = library.interests.get(chosen_theme.lower(), chosen_theme)
            text = f"a {noun}, {scene}, professional product photography, photorealistic"
            negative = library.negative
    if extra:
        text = f"{text}, {extra}" if text else extra
    if negative_prompt is not None:
        negative = negative_prompt
    return PromptChoice(text, negative, chosen_theme, category)


def product_noun(library, category: str | None) -> str:
    """What to call the product in a prompt: the category itself when the library knows it
    by that name (``plant``, ``armchair``), else its library category's noun (``"Three-seat
    sofa"`` -> ``sofa``), else the category text, else ``product``."""
    from staging.generate.prompts import normalize_name

    if not category or not category.strip():
        return "product"
    key = library.match(category)
    if key is None:
        return category.strip()
    name = normalize_name(category)
    known = library.categories[key]
    if name in known.aliases or name == normalize_name(key):
        return name
    return known.product


# -- scores ---------------------------------------------------------------------------------------
def object_expansion(image: np.ndarray, product: np.ndarray, alpha: np.ndarray) -> float:
    """How much the background continues the product outside its mask, in ``[0, 1]``.

    Inpainting models like to extend the product into the hole around it (a second chair
    leg, a longer sleeve; Taboola's Figure 1). We look at a thin ring of pure background
    around the product (``4 %`` of the product's size, at least 2 px) and ask, per pixel,
    whether its colour is closer to the *nearest product edge pixel* (within 12 ΔE in CIELAB)
    than to the *local background* (the Gaussian-weighted colour of a band further out).
    Pixels where the product's edge and the local background look alike cannot tell
    anything and are left out. The score is the share of the remaining ring pixels that
    look like the product: ~0 for a background that is distinct right up to the product,
    ~1 when the product's colour spills all around it.

    Args:
        image: the staged (or just generated) image, RGB uint8.
        product: the placed product's colours, RGB uint8, same size.
        alpha: the product's alpha in ``image``.
    """
    from scipy import ndimage

    inside = alpha >= 0.5
    area = int(inside.sum())
    if area == 0:
        return 0.0
    # A measure of colour continuity needs no more than ~200 px across the product; working
    # at that scale keeps it to milliseconds on a 1080^2 ad.
    factor = min(1.0, EXPANSION_SIDE / np.sqrt(area))
    if factor < 1.0:
        size = (max(8, round(alpha.shape[1] * factor)), max(8, round(alpha.shape[0] * factor)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        product = cv2.resize(product, size, interpolation=cv2.INTER_AREA)
        alpha = cv2.resize(alpha.astype(np.float32), size, interpolation=cv2.INTER_AREA)
        inside = alpha >= 0.5
        area = int(inside.sum())
        if area == 0:
            return 0.0
    width = max(2.0, 0.04 * np.sqrt(area))
    sigma = max(3.0, 3 * width)
    # Only the neighbourhood of the product matters: ring, band and the blur's reach.
    reach = int(np.ceil(5 * width + 3 * sigma)) + 2
    rows = np.flatnonzero(inside.any(axis=1))
    cols = np.flatnonzero(inside.any(axis=0))
    y0, y1 = max(0, rows[0] - reach), min(alpha.shape[0], rows[-1] + 1 + reach)
    x0, x1 = max(0, cols[0] - reach), min(alpha.shape[1], cols[-1] + 1 + reach)
    image, product = image[y0:y1, x0:x1], product[y0:y1, x0:x1]
    alpha, inside = alpha[y0:y1, x0:x1], inside[y0:y1, x0:x1]
    dist, (iy, ix) = ndimage.distance_transform_edt(~inside, return_indices=True)
    clear = alpha <= 0.02
    ring = clear & (dist <= width)
    band = clear & (dist > 2 * width) & (dist <= 5 * width)
    if not ring.any() or not band.any():
        return 0.0

    def lab(rgb: np.ndarray) -> np.ndarray:
        return cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)

    img_lab = lab(image)
    prod_lab = lab(product)
    weight = cv2.GaussianBlur(band.astype(np.float32), (0, 0), sigma)
    local = cv2.GaussianBlur(img_lab * band[..., None], (0, 0), sigma)
    local /= np.maximum(weight, 1e-6)[..., None]
    ring_px = img_lab[ring]
    edge_px = prod_lab[iy[ring], ix[ring]]
    bg_px = local[ring]
    known = weight[ring] > 1e-3
    d_product = np.linalg.norm(ring_px - edge_px, axis=1)
    d_background = np.linalg.norm(ring_px - bg_px, axis=1)
    decidable = known & (np.linalg.norm(edge_px - bg_px, axis=1) > 12.0)
    if not decidable.any():
        return 0.0
    like_product = (d_product < 12.0) & (d_product < d_background)
    return float(like_product[decidable].mean())


# -- the pipeline ---------------------------------------------------------------------------------
@dataclass
class Generation:
    """One bucket's generation: the canvas given to the generator and what came back."""

    bucket: Bucket
    canvas: BucketCanvas
    request: GenerationRequest
    image: np.ndarray | None = None
    cache: str = "off"  # "hit", "miss" or "off"


def pixel_budget(generator: Generator, need: float | None = None) -> tuple[int, int]:
    """``(pixels, multiple)``: how large a generation canvas to draw and what its sides must
    be multiples of.

    Diffusion backends always work at their native resolution (a model asked for fewer
    pixels paints mush, for more it repeats objects) and their latent grid. Weights-free
    backends get what the bucket's largest target needs at full resolution (``need``),
    capped at :data:`DEFAULT_PIXEL_BUDGET`: a 300x250 banner needs no megapixel backdrop.
    """
    native = getattr(generator, "native", None)
    multiple = int(getattr(generator, "multiple", 8))
    if native:
        return int(native) ** 2, multiple
    budget = DEFAULT_PIXEL_BUDGET if need is None else min(DEFAULT_PIXEL_BUDGET, need)
    return max(int(budget), 64 * 64), multiple


def pixels_needed(
    bucket: Bucket,
    product_size: tuple[int, int],
    targets: Sequence[Placement],
    fill: float,
    align: str,
    margin: float,
) -> float:
    """Canvas pixels a bucket's generation needs so that every target's crop is at least
    at the target's own resolution (:func:`~staging.compose.buckets.crop_share`)."""
    need = 0.0
    for target in targets:
        box = layout(product_size, target, fill=fill, align=align, margin=margin).box
        share = crop_share(bucket, box, target)
        need = max(need, target.width * target.height / max(share, 1e-6))
    return need


def bucket_request(
    rgb: np.ndarray,
    alpha: np.ndarray,
    bucket: Bucket,
    generator: Generator,
    choice: PromptChoice,
    seed: int,
    steps: int | None = None,
    guidance: float | None = None,
    hints: dict[str, Any] | None = None,
    need: float | None = None,
) -> tuple[BucketCanvas, GenerationRequest]:
    """Steps 2 and 3 for one bucket: the product drawn on the bucket's generation canvas at
    the generator's pixel budget (:func:`pixel_budget`; ``need`` from
    :func:`pixels_needed`), its alpha and (for ControlNet backends) the edge image."""
    x0, y0, x1, y1 = product_bbox(alpha)
    budget, multiple = pixel_budget(generator, need)
    draw = fit_product_size(bucket, (x1 - x0) / (y1 - y0), max_pixels=budget, multiple=multiple)
    canvas = bucket_canvas(bucket, draw, multiple=multiple)
    image, canvas_alpha = _draw_on_canvas(rgb, alpha, canvas)
    control = control_image(image, canvas_alpha) if generator.uses_control else None
    request = GenerationRequest(
        image=image,
        alpha=canvas_alpha,
        prompt=choice.prompt,
        negative_prompt=choice.negative,
        seed=int(seed),
        steps=steps,
        guidance=guidance,
        control=control,
        hints=dict(hints or {}),
    )
    return canvas, request


def _draw_on_canvas(
    rgb: np.ndarray, alpha: np.ndarray, canvas: BucketCanvas
) -> tuple[np.ndarray, np.ndarray]:
    """The product on white at ``canvas.box``.

    ``place_product`` does the resampling (premultiplied, no halo) into a tile the size of
    the box; the tile is then padded out to the bucket canvas.
    """
    # INTEGRATION POINT (staging.compose.placement): a ``place_product(..., box=...)`` that
    # draws at a given box would replace the tile-and-pad below; until then the tile is
    # rendered at >= MIN_SIDE and shrunk when the bucket's box is smaller than that.
    bx0, by0, bx1, by1 = canvas.box
    bw, bh = bx1 - bx0, by1 - by0
    k = max(1, int(np.ceil(MIN_SIDE / max(1, min(bw, bh)))))
    tile = place_product(rgb, alpha, (bw * k, bh * k), fill=1.0, align="center", margin=0.0)
    tile_rgb, tile_alpha = tile.image, tile.alpha
    if k > 1:
        tile_rgb = cv2.resize(tile_rgb, (bw, bh), interpolation=cv2.INTER_AREA)
        tile_alpha = cv2.resize(tile_alpha, (bw, bh), interpolation=cv2.INTER_AREA)
    image = np.full((canvas.height, canvas.width, 3), 255, np.uint8)
    out_alpha = np.zeros((canvas.height, canvas.width), np.float32)
    image[by0:by1, bx0:bx1] = tile_rgb
    out_alpha[by0:by1, bx0:bx1] = np.clip(tile_alpha, 0.0, 1.0)
    return image, out_alpha


def stage(
    generator: Generator,
    rgb: np.ndarray,
    alpha: np.ndarray,
    choice: PromptChoice,
    mode: str = "prompt",
    placements: Sequence[PlacementSpec] | PlacementSpec | None = None,
    fill: float = DEFAULT_FILL,
    align: str = DEFAULT_ALIGN,
    margin: float = DEFAULT_MARGIN,
    seeds: Sequence[int] = (0,),
    steps: int | None = None,
    guidance: float | None = None,
    cache=None,
    r: float = DEFAULT_R,
    progress: StageProgress | None = None,
    source: dict[str, Any] | None = None,
) -> list[Staged]:
    """Run steps 2-5 for every ``placement`` x ``seed``; one :class:`Staged` each, in that
    order (placements outer, seeds inner).

    Args:
        generator: the background generator (from :func:`staging.generate.create_generator`).
        rgb: the product photo, RGB uint8; its colours are what is cut back (pass
            edge-decontaminated colours, e.g. ``Segmentation.foreground``).
        alpha: the product's alpha in ``rgb``, float32 in ``[0, 1]``.
        choice: the prompt (:func:`choose_prompt`).
        mode: ``prompt`` or ``vanilla`` (recorded in the results).
        placements: placement specs (names, ``"WxH"``, ratios, tuples); default ``square``.
        fill, align, margin: the layout (see :mod:`staging.compose.placement`).
        seeds: one result per seed and placement.
        cache: an optional :class:`~staging.generate.cache.GenerationCache`.
        r: the bucket increment ratio.
        progress: ``progress(fraction, message)``.
        source: extra provenance merged into every result's ``source``.
    """
    if mode not in ("prompt", "vanilla"):
        raise StagingError(f"mode must be 'prompt' or 'vanilla', not {mode!r}.")
    if isinstance(placements, (str, Placement)) or placements is None:
        placements = [placements or DEFAULT_PLACEMENT]
    elif (
        isinstance(placements, tuple)
        and len(placements) == 2
        and all(isinstance(v, int) for v in placements)
    ):
        placements = [placements]
    targets = [get_placement(p) for p in placements]
    if not targets:
        raise StagingError("Stage for at least one placement.")
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise StagingError("Stage with at least one seed.")
    rgb = np.asarray(rgb)
    alpha = np.clip(np.asarray(alpha, np.float32), 0.0, 1.0)
    say = progress or (lambda fraction, message: None)

    x0, y0, x1, y1 = product_bbox(alpha)
    product_size = (x1 - x0, y1 - y0)
    buckets = {
        t.name: bucket_for_placement(product_size, t, fill=fill, align=align, margin=margin, r=r)
        for t in targets
    }
    distinct = list(dict.fromkeys(buckets.values()))
    hints = {"mode": mode, "theme": choice.theme, "category": choice.category}
    model_id = f"{generator.name}:{'+'.join(generator.models) or '-'}"
    phash = None
    if cache is not None:
        from staging.generate.cache import product_hash

        phash = product_hash(rgb, alpha)

    generations: dict[tuple[Bucket, int], Generation] = {}
    total = len(distinct) * len(seeds)
    for number, (bucket, seed) in enumerate((b, s) for b in distinct for s in seeds):
        members = [t for t in targets if buckets[t.name] == bucket]
        need = pixels_needed(bucket, product_size, members, fill, align, margin)
        canvas, request = bucket_request(
            rgb, alpha, bucket, generator, choice, seed, steps, guidance, hints, need
        )
        base = GENERATION_SHARE * number / total
        label = f"generating {number + 1}/{total} ({generator.name}, seed {seed})"
        say(base, label)
        request.progress = lambda done, steps_total, base=base, label=label: say(
            base + GENERATION_SHARE * (done / max(steps_total, 1)) / total,
            f"{label}: step {done}/{steps_total}",
        )
        generation = Generation(bucket, canvas, request)
        if cache is None:
            generation.image = generator.generate(request)
        else:
            key = cache.key(
                phash,
                choice.prompt,
                bucket,
                seed,
                model_id,
                negative=choice.negative,
                steps=generator.steps_for(request),
                guidance=request.guidance,
                canvas=list(canvas.size),
                box=list(canvas.box),
                hints={k: v for k, v in hints.items() if k != "mode"},
                version=PIPELINE_VERSION,
            )
            hits = cache.hits
            generation.image = cache.get_or_generate(
                key,
                lambda request=request: generator.generate(request),
                meta={"prompt": choice.prompt, "seed": seed, "model": model_id},
            )
            generation.cache = "hit" if cache.hits > hits else "miss"
        generations[(bucket, seed)] = generation

    say(GENERATION_SHARE, "cutting the product back")
    results = []
    for target in targets:
        placed = place_product(rgb, alpha, target, fill=fill, align=align, margin=margin)
        for seed in seeds:
            generation = generations[(buckets[target.name], seed)]
            background = crop_for_placement(
                generation.image,
                generation.canvas,
                target,
                product_size=placed.product_size,
                fill=fill,
                align=align,
                margin=margin,
            )
            results.append(
                cut_back(
                    background,
                    placed,
                    mode=mode,
                    source={
                        **generator.describe(),
                        "prompt": choice.prompt,
                        "negative_prompt": choice.negative,
                        "theme": choice.theme,
                        "category": choice.category,
                        "seed": seed,
                        "steps": generator.steps_for(generation.request),
                        "placement": {
                            "name": target.name,
                            "width": target.width,
                            "height": target.height,
                            "fill": fill,
                            "align": align,
                            "margin": margin,
                            "box": list(placed.box),
                        },
                        "bucket": generation.bucket.key,
                        "generation_size": list(generation.canvas.size),
                        "cache": generation.cache,
                        **(source or {}),
                    },
                )
            )
    say(1.0, "done")
    return results


def cut_back(background: np.ndarray, placed, mode: str, source: dict[str, Any]) -> Staged:
    """Step 5: the placed product over the generated ``background`` with feathered edges,
    and the scores (product SSIM, object expansion, achieved fill)."""
    if background.shape != placed.image.shape:
        raise StagingError(
            f"The background {background.shape} does not match the placement {placed.image.shape}."
        )
    soft = feather(placed.alpha)
    image = composite(background, placed.image, soft)
    return Staged(
        image=image,
        alpha=soft,
        mode=mode,
        ssim=product_ssim(image, placed.image, soft),
        source=source,
        scores={
            "object_expansion": object_expansion(background, placed.image, placed.alpha),
            "placement_fill": float(placed.fill),
        },
    )
