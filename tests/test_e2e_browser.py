"""End to end, in a real browser: ``python app.py`` driven by Playwright in headless Chromium.

Upload an example, see the mask, run copy-paste staging, render a parallax MP4 and download it,
and see a user error as a readable message.

The browser is the system's Chromium (Debian's ``chromium`` package; ``.ci/run`` installs it),
never one downloaded by ``playwright install``. Set ``CHROMIUM_PATH`` to use another binary.
Without Playwright or Chromium the test skips, except when the browser is required:
``STAGING_E2E=required``, or ``CI=true`` (then a missing browser fails the run).
``STAGING_E2E=skip`` skips it on purpose.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]
_TRUE = {"1", "true", "yes", "on"}
# Read at import: the autouse fixture in conftest clears STAGING_* variables for each test.
MODE = os.environ.get("STAGING_E2E", "").strip().lower()
REQUIRED = MODE == "required" or (MODE != "skip" and os.environ.get("CI", "").lower() in _TRUE)
CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
APP_START_TIMEOUT = 90
STEP_TIMEOUT = 90_000  # ms, per UI step (first copy-paste also builds the demo index)
SERVER_ROOT = ""  # the app's cache, models and state folders (set by the app_url fixture)


def _feet(details) -> tuple[float, float]:
    """The ``feet`` of the JSON panel (Gradio's view puts every token on a line of its own)."""
    found = re.search(r'"feet"\s*:\s*\[\s*([\d.]+)\s*,\s*([\d.]+)', details.inner_text())
    assert found, details.inner_text()
    return float(found.group(1)), float(found.group(2))


def _missing(reason: str) -> None:
    if REQUIRED:
        pytest.fail(f"{reason} (required here: CI=true or STAGING_E2E=required)")
    pytest.skip(reason)


def chromium_path() -> str | None:
    """The system Chromium: $CHROMIUM_PATH, else the first candidate on PATH."""
    explicit = os.environ.get("CHROMIUM_PATH")
    if explicit:
        return explicit if Path(explicit).is_file() else None
    for name in CHROMIUM_CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Every response body the page receives (fetch, and the queue's server-sent events), kept for
# the scan below.
RECORD_RESPONSES = """
window.__bodies = [];
const fetched = window.fetch;
window.fetch = async (...args) => {
  const response = await fetched(...args);
  const entry = { text: "" };  // read as it streams: the queue's stream may stay open
  window.__bodies.push(entry);
  const copy = response.clone();
  if (copy.body) {
    const reader = copy.body.getReader();
    const decoder = new TextDecoder();
    (async () => {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        entry.text += decoder.decode(value, { stream: true });
      }
    })().catch(() => {});
  }
  return response;
};
const Events = window.EventSource;
window.EventSource = function (url, options) {
  const source = new Events(url, options);
  const entry = { text: "" };
  window.__bodies.push(entry);
  source.addEventListener("message", (e) => { entry.text += e.data + "\\n"; });
  return source;
};
window.EventSource.prototype = Events.prototype;
"""


def _recorded(context):
    context.add_init_script(RECORD_RESPONSES)
    return context


def _session(browser, app_url: str, **options):
    """A recorded browser context on the app, and its page, with the tests' step timeout."""
    from playwright.sync_api import expect

    context = _recorded(browser.new_context(viewport={"width": 1280, "height": 900}, **options))
    page = context.new_page()
    page.set_default_timeout(STEP_TIMEOUT)
    expect.set_options(timeout=STEP_TIMEOUT)
    page.goto(app_url)
    return context, page


def _load_product(page, name: str) -> None:
    """Upload an example product in the Studio tab and wait for its mask."""
    from playwright.sync_api import expect

    page.locator("#product-image input[type=file]").set_input_files(
        str(ROOT / "examples" / "products" / name)
    )
    expect(page.locator("#status-line")).to_contain_text("segment")


def _assert_no_server_paths(page, app_url: str) -> None:
    """No response of the session names a folder of the server: the project, the app's cache,
    models and state folders, the results folder, the home folder; and no stack trace. The
    one server path allowed is Gradio's own upload cache, which its file protocol sends as
    the ``path`` of every file it serves (``GRADIO_TEMP_DIR``, default ``/tmp/gradio``)."""
    bodies = page.evaluate("() => window.__bodies.map((entry) => entry.text)")
    bodies.append(httpx.get(app_url, timeout=10).text)  # the page, with its config
    bodies.append(httpx.get(app_url + "config", timeout=10).text)
    text = "\n".join(bodies)
    forbidden = {str(ROOT), str(Path.home()), SERVER_ROOT, "staging-app-", "Traceback"}
    found = {word for word in forbidden if word and word in text}
    assert "process_completed" in text  # the queue's results were recorded, not only acks
    assert not found, (found, _context(text, found))


def _context(text: str, words: set[str]) -> list[str]:
    return [text[max(0, text.index(w) - 120) : text.index(w) + 120] for w in words]


@pytest.fixture(scope="module")
def browser():
    if MODE == "skip":
        pytest.skip("STAGING_E2E=skip")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright is not installed (pip install -r requirements-dev.txt)")
    executable = chromium_path()
    if executable is None:
        _missing("no Chromium found (apt-get install chromium, or set CHROMIUM_PATH)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, headless=True)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    """``python app.py`` (the README's command) on a free port, with empty caches."""
    global SERVER_ROOT
    root = tmp_path_factory.mktemp("e2e")
    SERVER_ROOT = str(root)
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("STAGING_")}
    env.update(
        STAGING_APP_CACHE=str(root / "cache"),
        STAGING_MODELS_DIR=str(root / "models"),  # no pretrained weights ...
        STAGING_AUTO_PULL="0",  # ... and none fetched: the weights-free fallback, its banner
        STAGING_CACHE_DIR=str(root / "masks-cache"),
        STAGING_STATE_DIR=str(root / "state"),
        GRADIO_ANALYTICS_ENABLED="False",
    )
    log = open(root / "app.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "app.py", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + APP_START_TIMEOUT
        while True:
            if proc.poll() is not None:
                pytest.fail(f"app.py exited ({proc.returncode}):\n{(root / 'app.log').read_text()}")
            try:
                if httpx.get(url, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"app.py did not start in {APP_START_TIMEOUT} s")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def test_upload_segment_copy_paste_and_download_a_parallax_mp4(browser, app_url, tmp_path):
    from playwright.sync_api import expect

    context, page = _session(browser, app_url, accept_downloads=True)

    # No pretrained segmenter on disk: the banner says what that means, the fetch is offered.
    expect(page.locator("#segmentation-banner")).to_contain_text("staging models pull")
    expect(page.locator("#pull-model-button")).to_be_visible()

    # A user error is a readable message, not a traceback.
    page.get_by_role("tab", name="Copy-paste").click()
    page.locator("#copy-paste-button").click()
    toast = page.locator(".toast-body").first
    expect(toast).to_contain_text("Upload a product photo first")
    assert "Traceback" not in toast.inner_text()
    toast.locator("button").first.click()  # close it

    # Upload an example (Studio tab): the mask appears by itself (Mask tab).
    page.get_by_role("tab", name="Studio").click()
    example = ROOT / "examples" / "products" / "lamp.png"
    page.locator("#product-image input[type=file]").set_input_files(str(example))
    expect(page.locator("#status-line")).to_contain_text("segment")
    page.get_by_role("tab", name="Mask").click()
    mask = page.locator("#mask-image img")
    expect(mask).to_be_visible()
    page.wait_for_function(
        "() => { const i = document.querySelector('#mask-image img');"
        " return i && i.complete && i.naturalWidth > 0; }"
    )
    expect(page.locator("#status-line")).to_contain_text("segment")

    # The Catalog tab: "Show index" keeps the index's name (it used to put the demo index's
    # path there, and indexing another folder then merged it into the demo index).
    page.get_by_role("tab", name="Catalog").click()
    page.locator("#show-index-button").click()
    expect(page.locator("#catalog-stats")).to_contain_text("images")
    assert page.locator("#index-dir input").input_value() == "demo"

    # Copy-paste staging into the demo catalog (indexed on first use), one candidate.
    page.get_by_role("tab", name="Copy-paste").click()
    k = page.locator("#copy-paste-k input[type=number]")
    k.fill("1")
    k.press("Enter")
    page.locator("#copy-paste-button").click()
    expect(page.locator("#copy-paste-gallery img").first).to_be_visible()
    expect(page.locator("#copy-paste-sources img").first).to_be_visible()
    for gallery in ("#copy-paste-gallery", "#copy-paste-sources"):  # shown whole, not cropped
        fit = page.locator(f"{gallery} img").first.evaluate("e => getComputedStyle(e).objectFit")
        assert fit == "contain", (gallery, fit)
    expect(page.locator("#status-line")).to_contain_text("copy-paste")

    # Adjust it by hand: pick the result, then a click in the picture moves the product there.
    # The placement's JSON is behind the Advanced switch.
    page.locator("#advanced input").check()
    page.locator("#copy-paste-gallery img").first.click()
    view = page.locator("#adjust-view img")
    expect(view).to_be_visible()
    expect(page.locator("#adjust-details")).to_contain_text("feet")
    details = page.locator("#adjust-details")
    first = view.get_attribute("src")
    placed = _feet(details)
    box = view.bounding_box()
    view.click(position={"x": box["width"] * 0.3, "y": box["height"] * 0.9})
    expect(view).not_to_have_attribute("src", first)  # re-rendered, to a new file
    # The product's feet are where the click was (the 512 px demo scene fills the view).
    page.wait_for_timeout(500)  # the JSON panel updates with the image
    x, y = _feet(details)
    assert (x, y) != placed and abs(x - 0.3 * 512) <= 3 and abs(y - 0.9 * 512) <= 3, (x, y)

    # Vanilla: one result is shown whole in its box (Gradio gave a lone image the full width,
    # a 1200 px square cropped by the box's height).
    page.get_by_role("tab", name="Vanilla").click()
    page.locator("#vanilla-button").click()
    result = page.locator("#vanilla-gallery img").first
    expect(result).to_be_visible()
    box = page.locator("#vanilla-gallery .grid-wrap").bounding_box()
    shown = result.bounding_box()
    assert shown["height"] <= box["height"] and shown["width"] <= box["width"] / 2, (shown, box)

    # A short, small parallax clip: preview, then download the MP4.
    page.get_by_role("tab", name="Parallax").click()
    seconds = page.locator("#parallax-seconds input[type=number]")
    seconds.fill("1")
    seconds.press("Enter")
    size = page.locator("#parallax-size input")
    size.click()
    size.fill("160x160")
    size.press("Enter")
    page.locator("#parallax-button").click()
    download_button = page.locator("#parallax-download")
    expect(download_button).to_be_visible()
    expect(page.locator("#parallax-video video")).to_have_count(1)
    expect(page.locator("#parallax-info")).to_contain_text("160x160")
    with page.expect_download() as info:
        download_button.click()
    target = tmp_path / info.value.suggested_filename
    info.value.save_as(target)
    data = target.read_bytes()
    assert target.suffix == ".mp4" and data[4:8] == b"ftyp" and len(data) > 1000

    assert page.locator(".toast-body").count() == 0, page.locator(".toast-body").all_inner_texts()

    # A file that is not a photo: the message names the file as the user knows it (not a
    # temporary path); nothing of the previous product stays on screen (it used to keep its
    # mask and brush canvas), and the status line says what happened instead of keeping the
    # last success under an "Error" badge.
    page.get_by_role("tab", name="Studio").click()
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    page.locator("#product-image input[type=file]").set_input_files(str(empty))
    toast = page.locator(".toast-body").first
    expect(toast).to_contain_text("Cannot read 'empty.png': the file is empty.")
    assert "/tmp" not in toast.inner_text()
    page.wait_for_timeout(1500)  # a second message would have come by now
    assert page.locator(".toast-body").count() == 1, page.locator(".toast-body").all_inner_texts()
    expect(page.locator("#status-line")).to_contain_text("could not be read")
    expect(page.locator("#mask-image img")).to_have_count(0)
    _assert_no_server_paths(page, app_url)
    context.close()


def test_a_designer_uploads_rooms_and_a_csv_and_stages_into_them(browser, app_url, tmp_path):
    """From the browser only: three room photos and a CSV uploaded, indexed into this
    session's index, and the product staged into them; no server path on screen."""
    from playwright.sync_api import expect

    from tests.helpers.rooms import upload_rooms as _rooms

    files = [str(p) for p in _rooms(tmp_path / "rooms")]
    context, page = _session(browser, app_url)
    _load_product(page, "lamp.png")
    page.get_by_role("tab", name="Catalog").click()
    page.locator("#catalog-upload input[type=file]").set_input_files(files)
    page.wait_for_timeout(1000)  # the files reach the server
    page.locator("#upload-button").click()
    stats = page.locator("#catalog-stats")
    expect(stats).to_contain_text("3 staged")
    assert page.locator("#index-dir input").input_value().startswith("uploads-")
    assert "/tmp" not in stats.inner_text() and str(ROOT) not in stats.inner_text()
    page.get_by_role("tab", name="Studio").click()
    page.locator("#product-kind input, #product-kind textarea").first.fill("Chair")
    page.get_by_role("tab", name="Copy-paste").click()
    page.locator("#copy-paste-button").click()
    expect(page.locator("#copy-paste-gallery img").first).to_be_visible()
    captions = page.locator("#copy-paste-sources").inner_text()
    assert any(f"room{n}" in captions for n in range(3)), captions
    expect(page.locator("#copy-paste-why")).to_contain_text("Product as given: Chair.")
    assert page.locator(".toast-body").count() == 0, page.locator(".toast-body").all_inner_texts()
    _assert_no_server_paths(page, app_url)
    context.close()


def test_one_screen_shows_every_mode_and_acts_on_the_pick(browser, app_url, tmp_path):
    """The Studio tab: one upload, one click, every mode's candidates in one labelled grid;
    the picked one is explained, made a favourite, exported and animated in place."""
    from playwright.sync_api import expect

    context, page = _session(browser, app_url)
    _load_product(page, "chair.png")
    page.locator("#studio-button").click()
    grid = page.locator("#studio-grid")
    expect(grid.locator("img")).to_have_count(5)  # copy-paste x 3, vanilla, prompt
    captions = grid.inner_text()
    for mode in ("#1 Copy-paste", "#3 Copy-paste", "#4 Vanilla", "#5 Prompt"):
        assert mode in captions, captions
    grid.locator("img").first.click()
    why = page.locator("#studio-why")
    expect(why).to_contain_text("Scene: ")
    expect(why).to_contain_text("Models: mask given")
    page.locator("#studio-favourite").click()
    expect(page.locator("#studio-favourites")).to_contain_text("1 favourite(s): #1 Copy-paste")
    page.locator("#studio-export").click()
    expect(page.locator("#studio-files")).to_contain_text("-copy-paste-")
    page.get_by_role("tab", name="Parallax").click()  # the clip's settings live there
    seconds = page.locator("#parallax-seconds input[type=number]")
    seconds.fill("1")
    seconds.press("Enter")
    page.get_by_role("tab", name="Studio").click()
    page.locator("#studio-animate").click()
    expect(page.locator("#studio-video video")).to_have_count(1)
    expect(page.locator("#studio-clip")).to_contain_text("frames")
    page.locator("#studio-adjust").click()  # opens the Copy-paste tab's Adjust panel
    expect(page.locator("#adjust-view img")).to_be_visible()
    assert page.locator(".toast-body").count() == 0, page.locator(".toast-body").all_inner_texts()
    _assert_no_server_paths(page, app_url)
    context.close()
