"""Take the README's screenshots of the app with a real browser (headless Chromium).

    python scripts/screenshots.py [--out assets/screenshots] [--product examples/products/plant.png]

Starts ``python app.py`` on a free port with a fresh cache (so the demo catalog is indexed as
on a first run), drives it with Playwright in the system's Chromium (``CHROMIUM_PATH`` or
``chromium`` on PATH; no browser downloads) and writes one 1280x800 PNG per tab, palette-
optimised. Models come from the usual models folder; the README's screenshots are of the
offline default (no weights): the demo catalog's CSV gives its scenes' product masks.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SIZE = (1280, 800)
TIMEOUT = 180_000  # ms per UI step


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _chromium() -> str:
    path = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium")
    if not path:
        sys.exit("No Chromium: apt-get install chromium, or set CHROMIUM_PATH.")
    return path


def start_app(cache: Path) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    env = dict(os.environ, STAGING_APP_CACHE=str(cache), GRADIO_ANALYTICS_ENABLED="False")
    proc = subprocess.Popen(
        [sys.executable, "app.py", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.5)
    proc.terminate()
    sys.exit("app.py did not start")


def save(page, path: Path, anchor: str = "#status-line") -> None:
    """A 1280x800 shot starting at ``anchor`` (default the status line: the intro text is the
    same everywhere)."""
    page.wait_for_timeout(800)  # let images fade in
    top = page.evaluate(
        f"() => document.querySelector('{anchor}').getBoundingClientRect().top"
        " + window.scrollY - 12"
    )
    page.screenshot(
        path=str(path),
        full_page=True,
        clip={"x": 0, "y": top, "width": SIZE[0], "height": SIZE[1]},
    )
    image = Image.open(path).convert("RGB")
    image.quantize(colors=256, method=Image.Quantize.FASTOCTREE).save(path, optimize=True)
    print(f"{path} ({path.stat().st_size // 1024} KiB)")


def pick(page, elem_id: str, option: str) -> None:
    """Choose ``option`` in a dropdown."""
    page.locator(f"{elem_id} input").click()
    page.get_by_role("option", name=option, exact=True).click()


def take(url: str, out: Path, product: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_chromium(), headless=True)
        page = browser.new_page(viewport={"width": SIZE[0], "height": SIZE[1]})
        page.set_default_timeout(TIMEOUT)
        expect.set_options(timeout=TIMEOUT)
        page.goto(url)
        tab = lambda name: page.get_by_role("tab", name=name).click()  # noqa: E731

        page.locator("#product-image input[type=file]").set_input_files(str(product))
        expect(page.locator("#status-line")).to_contain_text("segment")
        page.locator("#studio-button").click()  # every mode, one grid
        expect(page.locator("#studio-grid img")).to_have_count(5)
        page.locator("#studio-grid img").first.click()
        expect(page.locator("#studio-why")).to_contain_text("Scene: ")
        page.keyboard.press("Escape")  # the grid back from its preview
        save(page, out / "studio.png", anchor="#studio-grid")

        tab("Mask")
        expect(page.locator("#cutout-image img")).to_be_visible()
        save(page, out / "mask.png")

        tab("Catalog")  # a designer's own rooms, uploaded from the browser
        rooms = sorted((ROOT / "examples" / "catalog").glob("room-0[1-6]-*.jpg"))
        page.locator("#catalog-upload input[type=file]").set_input_files([str(r) for r in rooms])
        page.wait_for_timeout(1000)
        page.locator("#upload-button").click()
        expect(page.locator("#catalog-stats")).to_contain_text("staged")
        save(page, out / "catalog.png")

        tab("Copy-paste")
        page.locator("#copy-paste-button").click()
        expect(page.locator("#copy-paste-gallery img").first).to_be_visible()
        save(page, out / "copy-paste.png")
        page.locator("#copy-paste-gallery img").first.click()  # adjust it by hand
        view = page.locator("#adjust-view img")
        expect(view).to_be_visible()
        before = view.get_attribute("src")
        box = view.bounding_box()
        view.click(position={"x": box["width"] * 0.35, "y": box["height"] * 0.92})
        expect(view).not_to_have_attribute("src", before)
        save(page, out / "copy-paste-adjust.png", anchor="#adjust-click")

        tab("Vanilla")
        pick(page, "#vanilla-category", "decor")
        page.locator("#vanilla-placement input").click()
        page.get_by_role("option", name="leaderboard", exact=True).click()
        page.keyboard.press("Escape")
        page.locator("#vanilla-button").click()
        expect(page.locator("#vanilla-gallery img").nth(1)).to_be_visible()
        save(page, out / "vanilla.png")

        tab("Prompt")
        pick(page, "#prompt-category", "decor")
        page.locator("#suggest-button").click()
        expect(page.locator("#prompt-suggestion")).to_contain_text("suggests")
        page.locator("#prompt-button").click()
        expect(page.locator("#prompt-gallery img").first).to_be_visible()
        save(page, out / "prompt.png")

        tab("Compare")
        page.get_by_label(page.locator("#favourites label").nth(0).inner_text()).check()
        page.locator("#favourites label").nth(2).click()
        page.locator("#export-button").click()
        expect(page.locator("#export-files")).to_contain_text("-copy-paste-")  # named exports
        save(page, out / "compare.png")

        tab("Parallax")
        page.locator("#parallax-source input").click()
        page.get_by_role("option").nth(1).click()
        pick(page, "#parallax-size", "1:1")
        page.locator("#parallax-button").click()
        expect(page.locator("#parallax-download")).to_be_visible()
        save(page, out / "parallax.png")
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "assets" / "screenshots")
    parser.add_argument("--product", type=Path, default=ROOT / "examples/products/plant.png")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="staging-shots-") as cache:
        proc, url = start_app(Path(cache))
        try:
            take(url, args.out, args.product.resolve())
        finally:
            proc.terminate()
            proc.wait(timeout=10)


if __name__ == "__main__":
    main()
