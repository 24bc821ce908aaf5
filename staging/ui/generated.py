"""The Vanilla and Prompt tabs: a generated background per placement size and seed.

``engine.stage_vanilla(...)`` generates the whole background around the product,
``engine.stage_prompt(...)`` a scene from a prompt or a theme of the category
(``staging stage vanilla|prompt``); **Suggest** asks the category's bandit
(``engine.suggest_prompt(category, context, interests)``) which theme to use.
"""

from __future__ import annotations

import logging

import gradio as gr

from staging import StagingError
from staging.ui.config import HEAVY, HEAVY_LIMIT
from staging.ui.plumbing import (
    details,
    mask_or_none,
    need_image,
    progress_callback,
    readable_errors,
    tab,
    text_or_none,
)

log = logging.getLogger("staging.app")
DEFAULT_PLACEMENT = "square"
VANILLA_INTRO = (
    "The whole background generated around the product, laid out for each "
    "placement size; no retrieval, and no scene prompt (`a photo of a <category>`, "
    "or nothing without a category)."
)


class GeneratedHandlers:
    """The Vanilla and Prompt tabs' handlers (methods of :class:`staging.ui.Studio`)."""

    def _generate(
        self, mode, image, mask, placement, seed, backend, results, steps, progress, **options
    ):
        """Stage ``mode`` (vanilla or prompt) with the fields both tabs share, and ``options``
        (the mode's own); keep the results and say which generator ran."""
        need_image(image)
        stage = self.engine.stage_vanilla if mode == "vanilla" else self.engine.stage_prompt
        staged = stage(
            image,
            placement=placements(placement),
            seed=int(seed or 0),
            backend=backend or None,
            mask=mask_or_none(mask),
            progress=progress_callback(progress),
            **options,
        )
        results, gallery = self._keep(results, staged, image)
        source = staged[0].source if staged else {}
        model = source.get("model")
        generator = f"`{source.get('backend', '?')}`" + (f" ({model})" if model else "")
        segment = source.get("segment_backend", "?")
        steps, status = self._step(steps, mode, f"segment `{segment}`, generate {generator}")
        return gallery, details(staged), results, steps, status

    @readable_errors
    def stage_vanilla(
        self,
        image: str | None,
        mask: str | None = None,
        category: str = "",
        prompt: str = "",
        placement: list[str] | str | None = None,
        seed: int = 0,
        backend: str = "auto",
        results: list | None = None,
        steps: dict | None = None,
        progress=gr.Progress(),
    ):
        """Vanilla tab: the whole background generated around the product
        (engine.stage_vanilla)."""
        return self._generate(
            "vanilla", image, mask, placement, seed, backend, results, steps, progress,
            category=text_or_none(category), prompt=text_or_none(prompt),
        )  # fmt: skip

    @readable_errors
    def stage_prompt(
        self,
        image: str | None,
        mask: str | None = None,
        category: str = "",
        theme: str = "",
        prompt: str = "",
        interests: str = "",
        placement: list[str] | str | None = None,
        seed: int = 0,
        backend: str = "auto",
        results: list | None = None,
        steps: dict | None = None,
        progress=gr.Progress(),
    ):
        """Prompt tab: a generated scene from a prompt, or a theme of the category's library."""
        return self._generate(
            "prompt", image, mask, placement, seed, backend, results, steps, progress,
            prompt=text_or_none(prompt), theme=text_or_none(theme),
            category=text_or_none(category), interests=interest_list(interests),
        )  # fmt: skip

    @readable_errors
    def suggest_prompt(self, category: str = "", location: str = "", interests: str = ""):
        """The bandit's suggestion (engine.suggest_prompt): a theme, its filled prompt, scores."""
        context = {"location": location.strip()} if location and location.strip() else None
        suggestion = self.engine.suggest_prompt(
            text_or_none(category), context=context, interests=interest_list(interests)
        )
        ranked = sorted(suggestion.scores.items(), key=lambda kv: -kv[1])
        scores = ", ".join(f"{name} {score:.2f}" for name, score in ranked)
        about = (
            f"The bandit for **{suggestion.category}** suggests **{suggestion.theme}** "
            f"(upper confidence bounds: {scores}; {suggestion.updates} feedback updates so far)."
        )
        return suggestion.theme, suggestion.prompt, about

    def category_choices(self) -> list[str]:
        """Categories of the prompt library (its themes are what the bandit chooses among)."""
        try:
            return list(self.engine.prompt_library().categories)
        except StagingError:  # a broken prompts file must not stop the app; staging reports it
            log.exception("cannot read the prompt library")
            return []

    def theme_choices(self, category: str | None) -> list[str]:
        """The themes of ``category`` (every theme without one)."""
        try:
            return [t.name for t in self.engine.prompt_library().themes(text_or_none(category))]
        except StagingError:
            return []

    def themes_for(self, category: str | None):
        """New theme choices when the category changes."""
        return gr.Dropdown(choices=self.theme_choices(category), value=None)

    def generation_note(self) -> str:
        """Which generator ``auto`` runs, and how to get diffusion weights when there are none."""
        from staging.generate import resolve

        hint = self.engine.generation_hint()
        if hint is None:
            return f"Generator `auto` = **{resolve(None, self.engine.runtime)}** (weights found)."
        lines: list[str] = []
        for line in hint.splitlines():  # indented command lines become a code block
            if lines and line.startswith("    ") != lines[-1].startswith("    "):
                lines.append("")
            lines.append(line)
        return "\n".join(lines)

    def generator_title(self) -> str:
        """The accordion's title: the generator ``auto`` runs, and whether it needs weights."""
        from staging.generate import resolve

        name = resolve(None, self.engine.runtime)
        if self.engine.generation_hint() is None:
            return f"Generator 'auto' = {name}"
        return f"Generator 'auto' = {name} (weights-free): how to use diffusion models"


def placements(placement) -> list[str] | None:
    """The placement field's names (one, or a list), or None for the default."""
    if isinstance(placement, str):
        placement = [placement]
    chosen = [p.strip() for p in placement or [] if p and p.strip()]
    return chosen or None


def interest_list(text: str | None) -> list[str] | None:
    """Comma-separated interests as a list, or None."""
    return [i.strip() for i in (text or "").split(",") if i.strip()] or None


def placement_choices() -> list[str]:
    from staging.compose.placement import PLACEMENTS

    return [f"{name}" for name in PLACEMENTS]


def generator_choices() -> list[str]:
    from staging.generate import BACKENDS as GENERATORS

    return ["auto", *GENERATORS]


def _placement_field(label: str, elem_id: str | None = None) -> gr.Dropdown:
    return gr.Dropdown(
        placement_choices(),
        value=[DEFAULT_PLACEMENT],
        multiselect=True,
        allow_custom_value=True,
        label=label,
        scale=2,
        elem_id=elem_id,
    )


def _results_gallery(elem_id: str) -> gr.Gallery:
    return gr.Gallery(label="Results", columns=4, height=320, object_fit="contain", elem_id=elem_id)


PROMPT_INTRO = (
    "A scene from a prompt, or from one of the category's themes "
    "(`staging/assets/prompts.yaml`). **Suggest** asks the category's contextual "
    "bandit (LinUCB) which theme to use for this viewer."
)


def build_vanilla(studio, ui) -> None:
    """The Vanilla tab's components, added to ``ui``."""
    with tab("Vanilla", "vanilla", VANILLA_INTRO):
        with gr.Accordion(studio.generator_title(), open=False):
            gr.Markdown(studio.generation_note())
        with gr.Row():
            ui.v_category = gr.Dropdown(
                ui.categories,
                value=None,
                allow_custom_value=True,
                label="Product category",
                elem_id="vanilla-category",
            )
            ui.v_prompt = gr.Textbox(label="Prompt (optional: replaces the default)", scale=2)
        with gr.Row():
            ui.v_placement = _placement_field(
                "Placement sizes (names, WxH or ratios)", "vanilla-placement"
            )
            ui.v_seed = gr.Number(value=0, precision=0, label="Seed")
            ui.v_backend = gr.Dropdown(generator_choices(), value="auto", label="Generator")
        ui.v_button = gr.Button("Stage", variant="primary", elem_id="vanilla-button")
        ui.v_gallery = _results_gallery("vanilla-gallery")
        ui.v_details = gr.JSON(label="Details", visible=False)


def build_prompt(studio, ui) -> None:
    """The Prompt tab's components, added to ``ui``."""
    with tab("Prompt", "prompt", PROMPT_INTRO):
        with gr.Row():
            ui.p_category = gr.Dropdown(
                ui.categories,
                value=None,
                allow_custom_value=True,
                label="Product category",
                elem_id="prompt-category",
            )
            ui.p_location = gr.Textbox(label="Viewer location (optional)")
            ui.p_interests = gr.Textbox(label="Viewer interests, comma-separated (optional)")
            ui.suggest = gr.Button("Suggest", elem_id="suggest-button")
        ui.suggestion = gr.Markdown(label="Suggestion", elem_id="prompt-suggestion")
        with gr.Row():
            ui.p_theme = gr.Dropdown(
                studio.theme_choices(None),
                value=None,
                allow_custom_value=True,
                label="Theme",
                scale=1,
            )
            ui.p_prompt = gr.Textbox(
                label="Prompt (optional: replaces the theme's)", lines=2, scale=3
            )
        with gr.Row():
            ui.p_placement = _placement_field("Placement sizes")
            ui.p_seed = gr.Number(value=0, precision=0, label="Seed")
            ui.p_backend = gr.Dropdown(generator_choices(), value="auto", label="Generator")
        ui.p_button = gr.Button("Stage", variant="primary", elem_id="prompt-button")
        ui.p_gallery = _results_gallery("prompt-gallery")
        ui.p_details = gr.JSON(label="Details", visible=False)


def wire(studio, ui) -> None:
    """Stage vanilla, suggest a theme, stage from a prompt or theme."""
    ui.v_button.click(
        studio.stage_vanilla,
        [
            ui.image, ui.alpha, ui.v_category, ui.v_prompt, ui.v_placement, ui.v_seed,
            ui.v_backend, ui.results, ui.steps,
        ],
        [ui.v_gallery, ui.v_details, ui.results, ui.steps, ui.status],
        api_name="vanilla",
        concurrency_id=HEAVY,
        concurrency_limit=HEAVY_LIMIT,
    ).success(**ui.refresh)  # fmt: skip
    ui.p_category.change(studio.themes_for, [ui.p_category], [ui.p_theme], api_visibility="private")
    ui.suggest.click(
        studio.suggest_prompt,
        [ui.p_category, ui.p_location, ui.p_interests],
        [ui.p_theme, ui.p_prompt, ui.suggestion],
        api_name="suggest_prompt",
    )
    ui.p_button.click(
        studio.stage_prompt,
        [
            ui.image, ui.alpha, ui.p_category, ui.p_theme, ui.p_prompt, ui.p_interests,
            ui.p_placement, ui.p_seed, ui.p_backend, ui.results, ui.steps,
        ],
        [ui.p_gallery, ui.p_details, ui.results, ui.steps, ui.status],
        api_name="prompt",
        concurrency_id=HEAVY,
        concurrency_limit=HEAVY_LIMIT,
    ).success(**ui.refresh)  # fmt: skip
