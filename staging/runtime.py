"""Devices and ONNX Runtime sessions, shared by every backend.

Why here: device choice (cuda -> mps -> cpu) and session options are decided once per engine,
not in each backend, so every model of an engine runs on the same device.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from staging.errors import StagingError
from staging.models import ModelStore


def resolve_device(requested: str = "auto") -> str:
    """``auto`` -> ``cuda`` if a CUDA device is usable, else ``mps``, else ``cpu``.

    torch is optional: without it we ask ONNX Runtime whether it was built with CUDA.
    """
    if requested != "auto":
        return requested
    try:
        import torch  # noqa: PLC0415 - optional, heavy

        if torch.cuda.is_available():
            return "cuda"
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return "mps"
        return "cpu"
    except ImportError:
        pass
    import onnxruntime as ort

    return "cuda" if "CUDAExecutionProvider" in ort.get_available_providers() else "cpu"


def onnx_providers(device: str) -> list:
    """ONNX Runtime execution providers for a device name, CPU always last as fallback."""
    import onnxruntime as ort

    available = set(ort.get_available_providers())
    providers: list = []
    if device.startswith("cuda") and "CUDAExecutionProvider" in available:
        index = int(device.split(":")[1]) if ":" in device else 0
        providers.append(("CUDAExecutionProvider", {"device_id": index}))
    elif device == "mps" and "CoreMLExecutionProvider" in available:
        providers.append("CoreMLExecutionProvider")
    providers.append("CPUExecutionProvider")
    return providers


@dataclass
class Runtime:
    """What a backend factory needs from its engine: the model store, device and threads."""

    store: ModelStore
    device: str = "cpu"
    threads: int | None = None
    lora: str | None = None  # a LoRA folder for the diffusion pipelines (staging.diffusion)

    def onnx_session(self, path: str | Path | bytes):
        """An ONNX Runtime session on this runtime's device (a file, or a serialised model)."""
        import onnxruntime as ort

        options = ort.SessionOptions()
        if self.threads:
            options.intra_op_num_threads = self.threads
            options.inter_op_num_threads = 1
        try:
            model = path if isinstance(path, bytes) else str(path)
            return ort.InferenceSession(
                model, sess_options=options, providers=onnx_providers(self.device)
            )
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
            what = "(in memory)" if isinstance(path, bytes) else path
            raise StagingError(f"Could not load the ONNX model {what}: {exc}") from exc
