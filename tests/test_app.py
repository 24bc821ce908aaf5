"""The app is a thin skin: its handlers call the engine (real calls, on the shipped examples) and
turn user errors into gr.Error messages. This file: the Product tab and the brush helper
(staging.segment.edit), the Catalog tab, and the app's API through gradio_client against a
launched server. The staging modes, the Studio grid, Compare and Parallax: test_app_studio.py."""

from __future__ import annotations

import socket
import sys
import threading
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

gr = pytest.importorskip("gradio")
app = pytest.importorskip("app")

from staging.segment import edit  # noqa: E402
from staging.segment.base import Segmentation  # noqa: E402
from tests.helpers.studio import CHAIR, LAMP, studio_fixture  # noqa: E402, F401 - fixture
from tests.helpers.studio import readable as _readable  # noqa: E402

# ------------------------------------------------------------------------------ Product tab


def test_segment_handler_on_an_example(studio):
    outputs = studio.segment_product(CHAIR, "auto", {})
    prob, mask, cutout, alpha, steps, status = (
        Image.open(o) if i < 4 else o for i, o in enumerate(outputs)
    )
    assert cutout.mode == "RGBA" and mask.mode == "L" and prob.size == cutout.size
    assert alpha.mode == "L"
    assert steps == {"segment": "`backdrop`"}
    assert "backdrop" in status and "cpu" in status


def test_every_shown_image_is_a_new_file_never_rewritten(studio):
    """Issue 19, point 3: Gradio rewrote a picture's cache file in place when it was shown
    again (the probability map is two outputs), while the browser read it. Every image an
    output shows is a file of its own, written once under a new name."""
    first = studio.segment_product(CHAIR, "auto", {})[:4]
    again = studio.segment_product(CHAIR, "auto", {})[:4]
    paths = [*first, *again]
    assert all(isinstance(p, str) and Path(p).is_file() for p in paths)
    assert len(set(paths)) == 8  # the same picture twice is still two files
    gallery, sources, *_ = studio.copy_paste(LAMP, None, 1, True, False, "", [], {})
    assert all(isinstance(item[0], str) and Path(item[0]).is_file() for item in sources)


def test_banner_offers_the_model_fetch_until_a_model_is_on_disk(studio, monkeypatch):
    text, button = studio.segmentation_banner()
    assert "staging models pull isnet-general-fp16" in text["value"] and button["visible"]
    models = studio.engine.store.dirs[0]

    def fake_pull(name="isnet-general-fp16", progress=True):
        (models / f"{name}.onnx").write_bytes(b"pulled")
        return models / f"{name}.onnx"

    monkeypatch.setattr(studio.engine, "pull_model", fake_pull)
    try:
        text, button = studio.pull_segmenter()
        assert "isnet-general-fp16` (pretrained" in text["value"] and not button["visible"]
    finally:
        (models / "isnet-general-fp16.onnx").unlink()


def test_model_fetch_offline_is_a_readable_error(studio, monkeypatch):
    monkeypatch.setattr(studio.engine.store, "offline", True)
    with pytest.raises(gr.Error) as info:
        studio.pull_segmenter()
    assert "offline mode is on" in _readable(info)


@pytest.mark.parametrize("bad", [None, "README.md"])
def test_segment_handler_errors_are_readable(studio, bad):
    with pytest.raises(gr.Error) as info:
        studio.segment_product(bad, "auto")
    _readable(info)


def test_unknown_backend_is_a_readable_error(studio):
    with pytest.raises(gr.Error) as info:
        studio.segment_product(CHAIR, "no-such-backend")
    assert "no-such-backend" in _readable(info)


def test_new_photo_segments_at_once_and_clearing_clears(studio):
    outputs = studio.product_changed(LAMP, "auto", {})
    assert outputs[1] is not None and "segment" in outputs[4]
    cleared = studio.product_changed(None, "auto", {"segment": "x"})
    assert cleared[:4] == (None, None, None, None)


def _strokes(shape, add_box=None, remove_box=None) -> np.ndarray:
    """A transparent RGBA layer with a green and/or a red painted rectangle."""
    layer = np.zeros((*shape, 4), np.uint8)
    for box, colour in ((add_box, edit.ADD_COLOUR), (remove_box, edit.REMOVE_COLOUR)):
        if box is not None:
            y0, y1, x0, x1 = box
            layer[y0:y1, x0:x1, :3] = edit._rgb(colour)
            layer[y0:y1, x0:x1, 3] = 255
    return layer


def test_brush_corrections_change_the_mask_every_mode_uses(studio, tmp_path):
    seg = studio.engine.segment(CHAIR)
    h, w = seg.mask.shape
    ys, xs = np.nonzero(seg.mask)
    product_box = (ys.min() + 5, ys.min() + 25, xs.min() + 5, xs.max() - 5)  # remove: in product
    background_box = (5, 25, 5, 25)  # add: a corner of the backdrop
    layer = _strokes((h, w), add_box=background_box, remove_box=product_box)
    mask, cutout, alpha, steps, status = studio.correct_mask(
        CHAIR, "auto", {"background": None, "layers": [layer], "composite": None}, {}
    )
    fixed = np.asarray(Image.open(mask)) > 127
    assert fixed[10, 10] and not seg.mask[10, 10]
    y, x = product_box[0] + 5, (product_box[2] + product_box[3]) // 2
    assert seg.mask[y, x] and not fixed[y, x]
    assert np.asarray(Image.open(cutout))[10, 10, 3] == 255
    assert "backdrop+edit" in status
    # The corrected alpha (a file) is what the staging modes receive: parallax uses it as is.
    assert (np.asarray(Image.open(alpha)) > 127)[10, 10]


def test_brush_without_strokes_says_what_to_do(studio):
    with pytest.raises(gr.Error) as info:
        studio.correct_mask(CHAIR, "auto", {"background": None, "layers": [], "composite": None})
    assert "green" in _readable(info)


def test_brush_canvas_tints_the_background(studio, tmp_path):
    seg = studio.engine.segment(LAMP)
    mask_file = tmp_path / "mask.png"
    seg.mask_image.save(mask_file)
    canvas = studio.brush_canvas(LAMP, str(mask_file))
    background = canvas["background"]
    assert background.shape == seg.image.shape and canvas["layers"] == []
    outside = ~seg.mask
    assert not np.array_equal(background[outside], seg.image[outside])
    assert np.array_equal(background[seg.mask], seg.image[seg.mask])
    assert studio.brush_canvas(None, None) is None


# ------------------------------------------------------------------------------ the brush helper


def test_strokes_to_edits_sorts_colours_and_resizes():
    layer = _strokes((50, 100), add_box=(0, 10, 0, 10), remove_box=(40, 50, 90, 100))
    add, remove = edit.strokes_to_edits([layer], size=(200, 100))  # canvas at half size
    assert add.shape == (100, 200)
    assert add[:20, :20].all() and not add[80:, 180:].any()
    assert remove[80:, 180:].all() and not remove[:20, :20].any()
    # A later layer wins where strokes overlap.
    erase = _strokes((50, 100), remove_box=(0, 10, 0, 10))
    add2, remove2 = edit.strokes_to_edits([layer, erase], size=(100, 50))
    assert remove2[:10, :10].all() and not add2[:10, :10].any()
    empty_add, empty_remove = edit.strokes_to_edits([], size=(8, 4))
    assert empty_add.shape == (4, 8) and not empty_add.any() and not empty_remove.any()
    with pytest.raises(ValueError):
        edit.strokes_to_edits([np.zeros((4, 4))])


def test_edits_keep_soft_edges_elsewhere_and_remove_wins():
    prob = np.full((4, 4), 0.3, np.float32)
    add = np.zeros((4, 4), bool)
    add[0] = True
    remove = np.zeros((4, 4), bool)
    remove[:, 0] = True
    out = edit.apply_edits(prob, add, remove)
    assert out[0, 1] == 1.0 and out[0, 0] == 0.0 and out[2, 2] == pytest.approx(0.3)
    seg = Segmentation(np.zeros((4, 4, 3), np.uint8), prob, "catalog")
    fixed = edit.edit_segmentation(seg, add, remove)
    assert fixed.backend == "catalog+edit" and fixed.mask[0, 1] and not fixed.mask[2, 2]
    assert edit.edit_segmentation(seg).backend == "catalog"
    with pytest.raises(ValueError):
        edit.apply_edits(prob, np.zeros((2, 2), bool))


# ------------------------------------------------------------------------------ Catalog tab


def test_index_the_demo_catalog_then_update_it(studio, tmp_path):
    stats, entries, listed, steps, status = studio.index_catalog(
        str(app.DEMO_CATALOG), "", "mine", LAMP, {}
    )
    assert listed["value"] == "mine" and "mine" in listed["choices"]  # named and listed
    assert (studio.cache / "indexes" / "mine" / "catalog.sqlite").is_file()
    assert "**19 images**" in stats and "16 staged" in stats and "19 added" in stats
    assert len(entries) == 8 and "·" in entries[0][1]
    assert "handcrafted" in status
    again = studio.index_catalog(str(app.DEMO_CATALOG), "", "mine", None, {})[0]
    assert "19 unchanged" in again
    shown = studio.show_catalog("mine", None)
    assert "**19 images**" in shown[0] and shown[2]["value"] == "mine"
    # A server folder inside the shared roots still works, as before.
    out = studio.cache / "indexes" / "mine"
    assert "**19 images**" in studio.show_catalog(str(out), None)[0]


def test_the_demo_index_is_read_only(studio, tmp_path):
    """Issue 19, point 1: "Show index" used to put the demo index's path in the field, and
    indexing another folder then merged it into the demo index. Now the field keeps a name,
    and the demo index refuses any folder but the demo catalog."""
    shown = studio.show_catalog("", None)
    assert shown[2]["value"] == "demo"  # a name, not a path
    before = studio.engine.index(studio.demo_index_dir).stats()["items"]
    other = studio.cache / "my-photos"
    other.mkdir(parents=True, exist_ok=True)
    Image.open(CHAIR).save(other / "chair.png")
    with pytest.raises(gr.Error) as info:
        studio.index_catalog(str(other), "", shown[2]["value"], None, {})
    assert "read-only" in _readable(info)
    assert studio.engine.index(studio.demo_index_dir).stats()["items"] == before
    # Left empty, another folder gets an index of its own, listed by name.
    _, _, listed, _, _ = studio.index_catalog(str(other), "", "", None, {})
    assert listed["value"].startswith("my-photos-") and listed["value"] in listed["choices"]
    assert studio.index_path(listed["value"]).parent == studio.cache / "indexes"


@pytest.mark.parametrize("folder", ["", "/no/such/folder"])
def test_index_errors_are_readable(studio, folder):
    with pytest.raises(gr.Error) as info:
        studio.index_catalog(folder, "", "", None, {})
    assert "folder" in _readable(info)


def test_show_a_missing_index_is_readable(studio, tmp_path):
    with pytest.raises(gr.Error) as info:
        studio.show_catalog(str(studio.cache / "nothing"), None)
    assert "staging index" in _readable(info)


def _escapes(studio, tmp_path) -> list[str]:
    """Server paths outside the shared folders, written the ways a client could try."""
    private = tmp_path / "private"
    private.mkdir(exist_ok=True)
    Image.new("RGB", (40, 40), "red").save(private / "secret.png")
    studio.cache.mkdir(parents=True, exist_ok=True)
    link = studio.cache / "innocent-link"
    if not link.exists():
        link.symlink_to(private, target_is_directory=True)
    return [
        str(private),  # an absolute path
        str(studio.cache / ".." / ".." / private.relative_to(tmp_path.parent.parent)),  # ..
        str(link),  # a symlink out of a shared folder
    ]


def test_server_paths_outside_the_shared_folders_are_refused(studio, tmp_path):
    demo = str(app.DEMO_CATALOG)
    for path in _escapes(studio, tmp_path):
        for handler, args in (
            (studio.index_catalog, (path, "", "", None, {})),  # the catalog folder
            (studio.index_catalog, (demo, "", path, None, {})),  # the index folder
            (studio.index_catalog, (demo, path + "/x.csv", "", None, {})),  # the CSV
            (studio.show_catalog, (path, None)),
            (studio.copy_paste, (LAMP, None, 1, True, False, path, [], {})),
        ):
            with pytest.raises(gr.Error) as info:
                handler(*args)
            assert "outside the folders this server shares" in _readable(info)
    assert not (tmp_path / "private" / "catalog.sqlite").exists()  # nothing written there


def test_catalog_roots_are_configurable(studio, tmp_path, monkeypatch):
    allowed = tmp_path / "catalogs"
    allowed.mkdir()
    monkeypatch.setenv("STAGING_CATALOG_ROOTS", str(allowed))
    assert studio.confined(str(allowed / "a" / ".." / "b"), "x") == (allowed / "b").resolve()
    with pytest.raises(gr.Error):
        studio.confined(str(app.DEMO_CATALOG), "x")  # no longer shared


# ------------------------------------------------------------------------------ the app and API


def test_ui_builds_with_examples_queue_and_upload_limit():
    assert len(app.EXAMPLES) >= 3
    demo = app.create_app()
    assert demo._queue.max_size == 32 and demo._queue.default_concurrency_limit == 2
    heavy = {f.api_name: f for f in demo.fns.values() if f.concurrency_id == app.HEAVY}
    assert {"index_catalog", "copy_paste", "vanilla", "prompt", "parallax"} <= set(heavy)
    assert app.launch_options()["max_file_size"] == app.MAX_UPLOAD


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(studio):
    """The app launched in this process, with a small upload limit."""
    demo = studio.create_app()
    options = studio.launch_options("127.0.0.1", _free_port())
    options["max_file_size"] = "400kb"
    demo.launch(prevent_thread_lock=True, quiet=True, **options)
    yield f"http://127.0.0.1:{options['server_port']}/"
    demo.close()


def test_api_from_gradio_client(server, studio, tmp_path):
    from gradio_client import Client, handle_file

    client = Client(server, verbose=False)
    prob, mask, cutout, alpha, status = client.predict(
        handle_file(LAMP), "auto", api_name="/segment"
    )
    assert Image.open(mask).size == Image.open(LAMP).size and "backdrop" in status
    video, button, info, status = client.predict(
        handle_file(LAMP),
        handle_file(alpha),
        app.PRODUCT_PHOTO,
        "pan",
        1,
        "96x96",
        api_name="/parallax",
    )
    assert Path(video).read_bytes()[4:8] == b"ftyp"
    theme, prompt, about = client.predict("chair", "", "", api_name="/suggest_prompt")
    assert theme and prompt
    for path in _escapes(studio, tmp_path):  # the same refusal through the API
        with pytest.raises(Exception) as refused:
            client.predict(path, "", "", None, api_name="/index_catalog")
        assert "outside the folders this server shares" in str(refused.value)
        with pytest.raises(Exception) as refused:
            client.predict(path, None, api_name="/show_catalog")
        assert "outside the folders this server shares" in str(refused.value)


def test_api_errors_are_messages_and_uploads_are_limited(server, tmp_path):
    from gradio_client import Client, handle_file

    client = Client(server, verbose=False)
    with pytest.raises(Exception) as info:
        client.predict([], "PNG", api_name="/export")
    assert "No results" in str(info.value) and "Traceback" not in str(info.value)
    big = tmp_path / "big.png"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (400, 400, 3), dtype=np.uint8)).save(big)
    assert big.stat().st_size > 400_000
    with pytest.raises(Exception) as info:  # the client checks the app's limit first ...
        client.predict(handle_file(str(big)), "auto", api_name="/segment")
    assert "maximum file size" in str(info.value)
    with open(big, "rb") as fh:  # ... and the server refuses a direct upload
        response = httpx.post(f"{server}gradio_api/upload", files={"files": fh})
    assert response.status_code == 413


def test_a_corrupt_upload_is_our_readable_error_not_gradios(server, tmp_path, capfd):
    # Gradio decodes an uploaded image before any handler runs; a broken file used to come
    # back as its bare UnidentifiedImageError with a traceback in the server log.
    from gradio_client import Client, handle_file

    broken = tmp_path / "photo.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 this is not really a JPEG" * 10)
    client = Client(server, verbose=False)
    with pytest.raises(Exception) as info:
        client.predict(handle_file(str(broken)), "auto", api_name="/segment")
    text = str(info.value)
    assert "UnidentifiedImageError" not in text and "Traceback" not in text
    assert "Cannot read 'photo.jpg'" in text and "corrupt" in text
    assert "Traceback" not in capfd.readouterr().err  # nothing for the server log either


def test_readable_uploads_explain_what_gradio_cannot_decode(tmp_path):
    from gradio.data_classes import ImageData

    broken = tmp_path / "upload.png"
    broken.write_bytes(b"not an image at all")
    with pytest.raises(gr.Error) as info:
        photo = app.readable_uploads(gr.Image(type="filepath"))
        photo.preprocess(ImageData(path=str(broken), orig_name="a.png"))
    assert info.value.print_exception is False
    assert "Cannot read 'a.png'" in _readable(info)


def test_the_app_compiles_the_matting_kernels_while_it_starts(studio, monkeypatch):
    """pymatting compiles at first import (~1 min after an install) and the demo catalog is
    indexed on first use: ``main`` starts both in a background thread before serving, so a
    user's first photo and first grid wait for neither."""
    started = []
    monkeypatch.setattr(threading, "Thread", lambda target, **kw: _Started(target, started))
    monkeypatch.setattr(studio, "create_app", lambda: _NoLaunch())
    monkeypatch.setattr(sys, "argv", ["app.py"])
    studio.main()
    assert started == [studio.warm_up]
    calls = []
    monkeypatch.setattr(studio, "prepare_matting", lambda: calls.append("matting"))
    monkeypatch.setattr(studio, "demo_index", lambda: calls.append("demo") or 1 / 0)
    studio.warm_up()  # a failing warm-up is logged, never raised
    assert calls == ["matting", "demo"]


class _Started:
    def __init__(self, target, log):
        self.target, self.log = target, log

    def start(self):
        self.log.append(self.target)


class _NoLaunch:
    def launch(self, **options):
        pass


def test_rooms_uploaded_from_the_browser_are_staged_into_at_once_then_deleted(studio, tmp_path):
    """Three room photos and a CSV, uploaded: indexed into this session's index, which the
    Index field then names, so Copy-paste stages into them; no server path is shown."""
    from tests.helpers.rooms import upload_rooms as _rooms

    files = [str(p) for p in _rooms(tmp_path / "rooms")]
    request = type("Request", (), {"session_hash": "abcdef1234567890"})()
    text, gallery, listed, steps, status = studio.upload_catalog(files, "", {}, request)
    assert listed["value"] == "uploads-abcdef12" and "uploads-abcdef12" in listed["choices"]
    assert "3 staged" in text and str(tmp_path) not in text and str(studio.cache) not in text
    assert sorted(caption for _, caption in gallery) == ["room0", "room1", "room2"]
    _, _, details, *_ = studio.copy_paste(
        LAMP, None, 3, True, False, listed["value"], [], {}, "Chair"
    )
    assert sorted(d["source"]["id"] for d in details) == ["room0", "room1", "room2"]
    with pytest.raises(gr.Error, match="cannot be written"):
        studio.upload_catalog(files, "demo", {}, request)
    text, gallery, listed = studio.delete_catalog("uploads-abcdef12")
    assert listed["value"] == "demo" and "uploads-abcdef12" not in listed["choices"]
    with pytest.raises(gr.Error, match="cannot be written"):
        studio.delete_catalog("demo")
