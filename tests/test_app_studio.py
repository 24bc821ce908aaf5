"""The app's staging handlers on the shipped examples (real engine calls, user errors as
gr.Error messages): copy-paste with its Adjust panel, vanilla and prompt staging, the Studio
grid of every mode, the Compare tab's favourites and exports, and the Parallax tab. The other
tabs and the API: test_app.py."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from PIL import Image

gr = pytest.importorskip("gradio")
app = pytest.importorskip("app")

from tests.helpers.studio import LAMP, studio_fixture  # noqa: E402, F401 - fixture
from tests.helpers.studio import readable as _readable  # noqa: E402

# ------------------------------------------------------------------------------ staging modes


def test_copy_paste_uses_the_demo_index_and_names_each_scene(studio):
    gallery, sources, details, results, steps, status, scenes, why = studio.copy_paste(
        LAMP, None, 2, True, False, "", [], {}
    )
    assert [Path(s["scene"]).name for s in scenes] == [d["source"]["file"] for d in details]
    assert all("/" not in d["source"]["file"] for d in details)  # named, never located
    assert studio.demo_index_dir.joinpath("catalog.sqlite").is_file()  # built on first use
    assert len(gallery) == len(sources) == len(details) == len(results) == 2
    assert all(Path(path).is_file() for path, _ in gallery)
    assert details[0]["source"]["id"] in sources[0][1]
    assert details[0]["source"]["file"].endswith(".jpg") and "path" not in details[0]["source"]
    assert {"label", "image", "alpha", "info"} <= set(results[0])
    assert "copy-paste" in status and "structure" in status


def test_copy_paste_captions_say_what_the_product_was_taken_for(studio):
    """The demo catalog has no product shots: a bare photo's kind is unknown and the words
    say where to give it; a kind typed in the field is used and named."""
    *_, why = studio.copy_paste(LAMP, None, 1, True, False, "", [], {})
    assert "Product kind unknown" in why
    gallery, _, details, *_, why = studio.copy_paste(
        LAMP, None, 1, True, False, "", [], {}, "Floor lamp", "40x40 cm"
    )
    assert "Product as given: Floor lamp 40x40 cm." in why
    assert gallery[-1][1].startswith("#") and "Copy-paste · " in gallery[-1][1]
    assert details[0]["source"]["product"]["inferred_from"] == "given"


def test_a_copy_paste_result_is_adjusted_by_clicks_size_and_shadows(studio, tmp_path):
    from types import SimpleNamespace as Click

    *_, results, _, _, scenes, _ = studio.copy_paste(LAMP, None, 1, True, False, "", [], {})
    adjusting, old_object, scale = studio.pick_result(scenes, Click(index=0))
    assert (old_object, scale) == ("as fitted", 1.0) and adjusting["position"] is None
    first, info, staged = studio.restage(LAMP, None, adjusting, old_object, scale)
    assert info["source"]["feet"] == staged.source["feet"] and Path(first).is_file()
    x, y = staged.source["feet"]
    moved = studio.click_scene(adjusting, app.CLICK_MOVES, Click(index=[x - 20, y + 10]))
    second, info, smaller = studio.restage(LAMP, None, moved, "kept", 0.7, False)
    assert info["source"]["feet"] == [x - 20, y + 10] and info["source"]["placement"] == "insert"
    assert smaller.mask.sum() < 0.6 * staged.mask.sum() and second != first  # a new file
    picked = studio.click_scene(moved, app.CLICK_PICKS, Click(index=[5, 5]))
    assert picked["object_at"] == [5, 5] and picked["position"] is None
    kept = studio.keep_adjusted(smaller, results, LAMP)
    assert len(kept) == len(results) + 1 and " Adjusted Copy-paste · " in kept[-1]["label"]
    assert studio.export_stem(kept[-1]) == f"lamp-copy-paste-{smaller.source['id']}"
    with pytest.raises(gr.Error) as info:
        studio.restage(LAMP, None, None)
    assert "Pick one of the copy-paste results" in _readable(info)
    forged = dict(adjusting, scene=str(tmp_path / "elsewhere.jpg"))
    with pytest.raises(gr.Error) as info:
        studio.restage(LAMP, None, forged)
    assert "outside the folders this server shares" in _readable(info)


def test_error_messages_name_files_never_the_servers_folders(studio):
    """Every handler's error reaches the browser with paths cut to file names."""
    from staging import StagingError

    def failing(error):
        @studio.readable_errors
        def handler():
            raise error

        with pytest.raises(gr.Error) as info:
            handler()
        return _readable(info)

    folder = str(studio.cache / "indexes" / "shop")
    assert "No index in catalog.sqlite." in failing(
        StagingError(f"No index in {folder}/catalog.sqlite.")
    )
    assert folder not in failing(OSError(f"[Errno 13] Permission denied: '{folder}/x.png'"))
    assert folder not in failing(RuntimeError(f"bug near {folder}/y.npz"))


# ------------------------------------------------------------------------------ Studio


def test_the_studio_grid_shows_every_mode_labelled_and_explains_a_pick(studio):
    from types import SimpleNamespace as Click

    gallery, notes, every, results, steps, status, picks = studio.stage_all(
        LAMP, None, 2, "Floor lamp", "", "", [], {}
    )
    labels = [caption for _, caption in gallery]
    assert [label.split(" · ")[0] for label in labels] == [
        "#1 Copy-paste", "#2 Copy-paste", "#3 Vanilla", "#4 Prompt",
    ]  # fmt: skip
    assert [r["label"] for r in results] == labels == [p["label"] for p in picks]
    assert [d["label"] for d in every] == labels and "Scene: " in every[0]["why"]
    assert "studio" in status and "copy-paste ×2" in status
    picked, why, details, adjust = studio.pick_candidate(picks, Click(index=0))
    assert picked == labels[0] and "Scene: " in why and "Product as given: Floor lamp." in why
    assert details["source"]["file"].endswith(".jpg") and adjust["interactive"] is True
    picked, why, _, adjust = studio.pick_candidate(picks, Click(index=3))
    assert "theme" in why and adjust["interactive"] is False
    with pytest.raises(gr.Error) as info:
        studio.adjust_candidate(picks, picked)  # a prompt result has no scene to adjust
    assert "Only copy-paste" in _readable(info)
    # A copy-paste pick opens in the Adjust panel, and re-renders there.
    adjusting, old_object, scale, tabs = studio.adjust_candidate(picks, labels[0])
    assert tabs.selected == "copy-paste" and adjusting["scene"] == picks[0]["scene"]["scene"]
    _, info, staged = studio.restage(LAMP, None, adjusting, old_object, scale)
    assert info["source"]["file"] == details["source"]["file"]
    # Favourites accumulate and survive a refresh of the Compare tab.
    favourites, said = studio.favourite_candidate(labels[0], [])
    favourites, said = studio.favourite_candidate(labels[3], favourites["value"])
    assert favourites["value"] == [labels[0], labels[3]] and said.startswith("2 favourite")
    _, kept, _ = studio.compare_view(results, favourites["value"])
    assert kept.value == [labels[0], labels[3]]
    with pytest.raises(gr.Error) as info:
        studio.favourite_candidate(None, [])
    assert "Pick a result" in _readable(info)


def test_the_studio_animates_the_picked_result_only(studio):
    *_, results, _, _, picks = studio.stage_all(LAMP, None, 1, "", "", "", [], {})
    with pytest.raises(gr.Error) as info:
        studio.animate_candidate(LAMP, None, None, "pan", 1.0, "96x96", results, {})
    assert "Pick a result" in _readable(info)
    box, video, button, clip, steps, status = studio.animate_candidate(
        LAMP, None, picks[0]["label"], "pan", 1.0, "96x96", results, {}
    )
    assert box.visible is True and Path(video).read_bytes()[4:8] == b"ftyp"
    assert Path(video).name.startswith("lamp-copy-paste-") and "96x96" in clip


def test_the_studio_says_which_mode_could_not_run(studio, tmp_path, monkeypatch):
    """An index of studio shots only: no scene to paste into; the other modes still run."""
    shots = tmp_path / "shots"
    shots.mkdir()
    (shots / "lamp.png").write_bytes(Path(LAMP).read_bytes())
    monkeypatch.setenv("STAGING_CATALOG_ROOTS", str(tmp_path))
    studio.engine.update_index(tmp_path / "index", shots, progress=False)
    gallery, notes, *_ = studio.stage_all(LAMP, None, 2, "", "", str(tmp_path / "index"), [], {})
    assert [caption.split(" · ")[0] for _, caption in gallery] == ["#1 Vanilla", "#2 Prompt"]
    assert notes.startswith("**Copy-paste** made nothing: ")


def test_copy_paste_without_a_photo_is_readable(studio):
    with pytest.raises(gr.Error) as info:
        studio.copy_paste(None)
    assert "Upload" in _readable(info)


def test_vanilla_and_prompt_stage_every_placement(studio):
    gallery, details, results, steps, status = studio.stage_vanilla(
        LAMP, None, "lamp", "", ["square", "300x250"], 3, "auto", [], {}
    )
    assert [d["width"] for d in details] == [1080, 300]
    assert details[0]["mode"] == "vanilla" and details[0]["source"]["seed"] == 3
    assert "studio" in status
    # Without diffusion weights the result says what it is, in the gallery and the API.
    assert details[0]["source"]["label"] == "backdrop only (no diffusion model)"
    assert all("backdrop only (no diffusion model)" in caption for _, caption in gallery)
    gallery, details, results, steps, status = studio.stage_prompt(
        LAMP, None, "lamp", "bedside", "", "nature", ["4:5"], 1, "auto", results, {}
    )
    assert len(results) == 3 and details[0]["source"]["theme"] == "bedside"
    assert (details[0]["width"], details[0]["height"]) == (1080, 1350)
    assert "prompt" in status


def test_bad_placement_is_a_readable_error(studio):
    with pytest.raises(gr.Error) as info:
        studio.stage_prompt(LAMP, None, "lamp", "", "a lamp on a desk", "", ["huge"], 0, "auto")
    assert "Unknown placement" in _readable(info)


def test_suggestion_is_one_of_the_category_themes(studio):
    theme, prompt, about = studio.suggest_prompt("lamp", "Paris", "nature")
    assert theme in studio.theme_choices("lamp")
    assert prompt and theme in about
    assert studio.theme_choices("chair") != studio.theme_choices("lamp")


# ------------------------------------------------------------------------------ Compare tab


def _results(studio, n=2):
    staged = studio.engine.stage_vanilla(LAMP, category="lamp", placement="medium-rectangle")
    results = []
    for _ in range(n):
        results, _ = studio._keep(results, staged, LAMP)
    return results


@pytest.mark.parametrize(
    ("fmt", "pil_format"), [("PNG", "PNG"), ("JPEG", "JPEG"), ("WebP", "WEBP")]
)
def test_export_favourites_in_each_format(studio, fmt, pil_format):
    results = _results(studio)
    files, archive = studio.export_results([results[1]["label"]], fmt, results)
    assert len(files) == 1
    assert Image.open(files[0]).format == pil_format
    assert zipfile.ZipFile(archive).namelist() == [Path(files[0]).name]
    every, _ = studio.export_results([], fmt, results)  # no favourite ticked: all
    suffix = Path(files[0]).suffix
    # Named by product, mode, placement and seed; the same one kept twice stays two files.
    assert [Path(f).name for f in every] == [
        f"lamp-vanilla-medium-rectangle-seed0{suffix}",
        f"lamp-vanilla-medium-rectangle-seed0-2{suffix}",
    ]


def test_favourites_teach_the_prompt_bandit(studio):
    """Ticking a prompt-staged result as favourite is a click for its theme, counted once."""
    staged = studio.engine.stage_prompt(LAMP, category="lamp", placement="medium-rectangle")
    staged += studio.engine.stage_prompt(
        LAMP, category="lamp", theme=1, placement="medium-rectangle"
    )
    results, _ = studio._keep([], staged)
    themes = [r["info"]["source"]["theme"] for r in results]
    assert themes[0] != themes[1]
    before = studio.engine.suggest_prompt("lamp").updates
    studio.export_results([results[0]["label"]], "PNG", results)
    studio.export_results([results[0]["label"]], "PNG", results)  # not counted twice
    assert studio.engine.suggest_prompt("lamp").updates == before + 2
    assert all(r["rewarded"] for r in results)


def test_export_errors_are_readable(studio):
    with pytest.raises(gr.Error) as info:
        studio.export_results([], "PNG", [])
    assert "No results" in _readable(info)
    with pytest.raises(gr.Error):
        studio.export_results([], "TIFF", _results(studio, 1))


def test_compare_view_lists_results_as_favourites_and_parallax_sources(studio):
    results = _results(studio)
    gallery, favourites, sources = studio.compare_view(results)
    assert len(gallery) == 2
    assert favourites.choices[0][0] == results[0]["label"]
    assert [c[0] for c in sources.choices] == [app.PRODUCT_PHOTO] + [r["label"] for r in results]


# ------------------------------------------------------------------------------ Parallax tab


def test_parallax_of_the_photo_and_of_a_staged_result(studio):
    video, button, info, steps, status = studio.render_parallax(
        LAMP, None, app.PRODUCT_PHOTO, "zoom", 1.0, "128x128", [], {}
    )
    assert Path(video).read_bytes()[4:8] == b"ftyp"
    assert Path(button.value["path"]).name == Path(video).name == "lamp-parallax-zoom.mp4"
    assert "128x128" in info and "parallax" in status
    results = _results(studio, 1)
    video, *_ = studio.render_parallax(
        None, None, results[0]["label"], "pan", 1.0, "1:1", results, {}
    )
    assert Path(video).stat().st_size > 0
    assert Path(video).name == "lamp-vanilla-medium-rectangle-seed0-parallax-pan.mp4"


def test_the_app_and_the_cli_render_parallax_with_the_same_defaults(studio):
    """Issue 19, point 7: both leave fit, fps and loop to engine.parallax, and their own
    defaults for length and motion are the engine's."""
    import inspect

    from staging.cli import parallax_command
    from staging.options import ParallaxOptions

    engine_defaults = ParallaxOptions().__dict__  # engine.parallax's defaults: its options
    options = inspect.signature(parallax_command).parameters.items()
    cli = {name: p.default.default for name, p in options if hasattr(p.default, "default")}
    for name in ("seconds", "fps", "motion", "fit", "loop"):
        assert cli[name] == engine_defaults[name], name
    app_defaults = inspect.signature(studio.render_parallax).parameters
    assert app_defaults["seconds"].default == engine_defaults["seconds"]
    assert app_defaults["motion"].default == engine_defaults["motion"]


def test_parallax_errors_are_readable(studio):
    with pytest.raises(gr.Error) as info:
        studio.render_parallax(LAMP, None, app.PRODUCT_PHOTO, "spin", 1.0, "photo")
    assert "spin" in _readable(info)
    with pytest.raises(gr.Error):
        studio.render_parallax(None)
