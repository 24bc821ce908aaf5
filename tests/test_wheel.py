"""A wheel install works, not only a checkout or an editable install (issue 31).

The wheel is built from a copy of the sources (no ``build/`` or egg-info in the checkout, and
no stale ``build/lib`` from an earlier layout), installed into a fresh venv made here, and a
subprocess of that venv, started outside the source tree, stages a tiny synthetic product
vanilla and copy-paste with the weights-free backends. Files the package reads at run time
(the bundled prompt themes) must therefore be package data, or this test fails.

The fresh venv cannot download anything: a ``.pth`` line in its site-packages adds this
interpreter's site-packages to its ``sys.path``. A directory added that way is not scanned for
``.pth`` files of its own, so the checkout's editable install of ``staging`` stays invisible
and ``import staging`` finds the wheel's copy (the subprocess checks).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

STAGE = r"""
import sys
from pathlib import Path

import numpy as np

import staging
from staging import StagingEngine
from staging.generate.prompts import BUNDLED
from staging.io import save_image, save_mask

venv, repo, work = (Path(p).resolve() for p in sys.argv[1:4])
package = Path(staging.__file__).resolve()
assert package.is_relative_to(venv), f"staging imported from {package}, not the wheel"
assert not package.is_relative_to(repo), package
assert BUNDLED.resolve().is_relative_to(venv) and BUNDLED.is_file(), BUNDLED

engine = StagingEngine(device="cpu")
library = engine.prompt_library()
assert Path(library.source).resolve() == BUNDLED.resolve(), library.source
assert library.resolve("Armchair") == "chair" and library.themes("chair")

# The product: a blue box on a white studio backdrop, and its mask.
product = np.full((120, 100, 3), 245, np.uint8)
alpha = np.zeros(product.shape[:2], bool)
alpha[20:100, 30:70] = True
product[alpha] = (30, 60, 170)

vanilla = engine.stage_vanilla(product, category="Armchair", mask=alpha, placement="80x100")
assert len(vanilla) == 1 and vanilla[0].mode == "vanilla", vanilla
assert vanilla[0].image.shape == (100, 80, 3) and vanilla[0].image.dtype == np.uint8
assert vanilla[0].source["backend"] == "studio", vanilla[0].source

# A catalog of two rooms with a red product on the floor, their true masks in the CSV
# (segmenting a room needs a pretrained model).
rng = np.random.default_rng(0)
lines = ["image,mask"]
for number, (x0, width, height) in enumerate([(130, 70, 90), (60, 90, 120)]):
    room = np.zeros((256, 320, 3), np.float32)
    room[:160] = rng.uniform(150, 230, 3)
    room[160:] = rng.uniform(60, 140, 3)
    room += rng.normal(0, 4, room.shape)
    mask = np.zeros((256, 320), bool)
    mask[217 - height : 217, x0 : x0 + width] = True
    room[mask] = (200, 30, 30)
    save_image(work / "catalog" / f"room{number}.png", np.clip(room, 0, 255).astype(np.uint8))
    save_mask(work / "masks" / f"room{number}.png", mask)
    lines.append(f"catalog/room{number}.png,masks/room{number}.png")
(work / "catalog.csv").write_text("\n".join(lines) + "\n")
engine.update_index(work / "index", work / "catalog", csv=work / "catalog.csv", progress=False)

pasted = engine.stage_copy_paste(product, k=1, index=work / "index", mask=alpha)
assert len(pasted) == 1 and pasted[0].mode == "copy-paste", pasted
assert pasted[0].image.shape == (256, 320, 3) and pasted[0].image.dtype == np.uint8
print("staged from", package)
"""


def _run(*args, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(args, capture_output=True, text=True, timeout=300, **kwargs)
    assert result.returncode == 0, f"{args}\n{result.stdout}\n{result.stderr}"
    return result


def test_a_wheel_install_stages_vanilla_and_copy_paste(tmp_path):
    # The sources the wheel needs, copied: setuptools builds in the source folder.
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    shutil.copytree(REPO / "staging", source / "staging", ignore=skip)
    dist = tmp_path / "dist"
    _run(
        sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
        "--disable-pip-version-check", "-w", str(dist), str(source),
    )  # fmt: skip
    (wheel,) = dist.glob("product_staging_studio-*.whl")

    venv = tmp_path / "fresh"
    _run(sys.executable, "-m", "venv", "--without-pip", str(venv))
    python = venv / "bin" / "python"
    fresh_site = Path(
        _run(
            str(python), "-I", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"
        ).stdout.strip()
    )
    # The dependencies (and pip) of this interpreter; not its .pth files (the editable hook).
    sites = dict.fromkeys(
        [sysconfig.get_paths()["purelib"]]
        + [p for p in sys.path if Path(p).name in ("site-packages", "dist-packages")]
    )
    (fresh_site / "dev-dependencies.pth").write_text("".join(f"{p}\n" for p in sites))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "STAGING_"))}
    env.update(
        STAGING_MODELS_DIR=str(tmp_path / "models"),
        STAGING_CACHE_DIR=str(tmp_path / "cache"),
        STAGING_STATE_DIR=str(tmp_path / "state"),
        STAGING_AUTO_PULL="0",
        HF_HUB_OFFLINE="1",
    )
    # --ignore-installed: pip sees the checkout's editable install through the .pth line and
    # must neither call the wheel already satisfied nor try to uninstall the checkout's.
    _run(
        str(python), "-I", "-m", "pip", "install", "--no-deps", "--no-index",
        "--ignore-installed", "--disable-pip-version-check", str(wheel), env=env, cwd=tmp_path,
    )  # fmt: skip

    work = tmp_path / "work"
    work.mkdir()
    script = tmp_path / "stage.py"
    script.write_text(STAGE)
    result = _run(
        str(python), "-I", str(script), str(venv), str(REPO), str(work), env=env, cwd=work
    )
    assert "staged from" in result.stdout
