"""Shared fixtures. Real data and weights live in ../shared (never in the repo); tests that
need them skip with a reason when it is absent (a user's fresh clone)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pytest

# For the whole run, module-scoped fixtures included: no test reads the user's models folder or
# fetches the recommended segmenter on first use (the tests that check that opt in), and no
# test writes the user's mask cache.
os.environ["STAGING_MODELS_DIR"] = tempfile.mkdtemp(prefix="staging-test-models-")
os.environ["STAGING_AUTO_PULL"] = "0"
os.environ["STAGING_CACHE_DIR"] = tempfile.mkdtemp(prefix="staging-test-cache-")

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
SHARED_MODELS = SHARED / "models"
SHARED_DATA = SHARED / "data"


def require_shared(*parts: str) -> Path:
    """The path under ../shared, or skip the test saying what is missing."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent (real data/weights are not shipped with the repo)")
    return path


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch, tmp_path_factory):
    """No test reads the developer's own STAGING_* settings or model cache."""
    for key in list(os.environ):
        if key.startswith("STAGING_") or key == "HF_HUB_OFFLINE":
            monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("STAGING_MODELS_DIR", str(tmp_path_factory.mktemp("models")))
    monkeypatch.setenv("STAGING_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    # No test fetches the recommended segmenter on first use (tests that check it opt in).
    monkeypatch.setenv("STAGING_AUTO_PULL", "0")


@pytest.fixture
def studio_shot() -> tuple[np.ndarray, np.ndarray]:
    """A dark-red box with a thin leg on an off-white backdrop, and its true mask."""
    img = np.full((200, 240, 3), (246, 244, 240), np.uint8)
    mask = np.zeros(img.shape[:2], bool)
    mask[50:130, 70:170] = True
    mask[130:180, 80:84] = True
    img[mask] = (150, 30, 40)
    return img, mask


def char_clip_vocab() -> dict[str, int]:
    """A character-level BPE vocabulary (no merges): enough for CLIP's tokenizer to run."""
    import string

    vocab: dict[str, int] = {}
    for ch in string.ascii_lowercase + string.digits + ",.-'":
        vocab[ch] = len(vocab)
        vocab[ch + "</w>"] = len(vocab)
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    return vocab


def save_char_clip_tokenizer(folder) -> dict[str, int]:
    """Save a character-level CLIP tokenizer (no merges) into ``folder``; return its vocab.

    Registry folders of CLIP include the tokenizer (``clip-score`` reads prompts), so tiny
    test checkpoints need one too; a real BPE vocabulary would be a download.
    """
    import transformers

    vocab = char_clip_vocab()
    transformers.CLIPTokenizer(vocab=vocab, merges=[]).save_pretrained(folder)
    return vocab


def tiny_clip_model(max_tokens: int = 64, image_size: int = 32, projection_dim: int = 12):
    """A whole CLIPModel (text and vision towers) with random weights and a tiny config whose
    text tower matches :func:`char_clip_vocab` — the shape of OpenAI's real checkpoint."""
    import torch
    import transformers

    vocab = char_clip_vocab()
    bos, eos = vocab["<|startoftext|>"], vocab["<|endoftext|>"]
    torch.manual_seed(0)
    config = transformers.CLIPConfig(
        text_config={
            "hidden_size": 16,
            "intermediate_size": 32,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "vocab_size": len(vocab),
            "max_position_embeddings": max_tokens,
            "bos_token_id": bos,
            "eos_token_id": eos,
            "pad_token_id": eos,
        },
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "patch_size": 8,
            "image_size": image_size,
        },
        projection_dim=projection_dim,
    )
    return transformers.CLIPModel(config).eval()


@pytest.fixture(scope="session")
def postgres_url():
    """A real PostgreSQL server for this test session (Debian's ``postgresql``, installed by
    ``.ci/run``), listening on a Unix socket in a temporary folder only (no TCP), stopped at the
    end. Run as the ``postgres`` user when the tests run as root (PostgreSQL refuses root)."""
    import shutil
    import subprocess

    pytest.importorskip("psycopg")
    bins = [Path(p) for p in sorted(Path("/usr/lib/postgresql").glob("*/bin"))]
    initdb = shutil.which("initdb") or next((str(b / "initdb") for b in bins), None)
    if initdb is None or not Path(initdb).exists():
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
    pg_ctl = str(Path(initdb).with_name("pg_ctl"))
    root = Path(tempfile.mkdtemp(prefix="staging-pg-"))  # not under pytest's root-only folder
    data, sockets = root / "data", root / "sockets"
    sockets.mkdir()
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(sockets, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    run = lambda *args: subprocess.run(  # noqa: E731
        [*as_user, *args], check=True, capture_output=True, text=True, timeout=120
    )
    run(initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "--no-sync")
    options = f"-c listen_addresses='' -k {sockets} -c fsync=off"
    run(pg_ctl, "-D", str(data), "-o", options, "-l", str(root / "log"), "-w", "start")
    try:
        yield f"postgresql://postgres@/postgres?host={sockets}"
    finally:
        run(pg_ctl, "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_url():
    """A real ``redis-server`` (Debian's package, installed by ``.ci/run``) for this test
    session, on a Unix socket in a temporary folder only (no TCP), stopped at the end."""
    import shutil
    import subprocess
    import time

    redis = pytest.importorskip("redis")
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    root = Path(tempfile.mkdtemp(prefix="staging-redis-"))
    socket = root / "redis.sock"
    process = subprocess.Popen(
        [server, "--port", "0", "--unixsocket", str(socket), "--save", "", "--appendonly", "no",
         "--dir", str(root)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"unix://{socket}"
    deadline = time.monotonic() + 30
    while True:
        try:
            redis.Redis.from_url(url).ping()
            break
        except redis.RedisError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise
            time.sleep(0.05)
    try:
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
        shutil.rmtree(root, ignore_errors=True)
