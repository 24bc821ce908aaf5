"""Devices, ONNX Runtime sessions and the model cache, shared by every backend.

Why here: device choice (cuda -> mps -> cpu) and session options are decided once per engine,
not in each backend, so every model of an engine runs on the same device; and each model is
loaded once per engine (:class:`ModelCache`), however many threads ask for it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from staging.errors import StagingError
from staging.models import ModelStore

T = TypeVar("T")


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


class ModelCache:
    """Loaded models by ``(kind, name)``, each built once and shared by every thread: a caller
    asking for one that is being built waits for it instead of building it again (one lock
    per key, so loading one model does not hold up the others)."""

    def __init__(self) -> None:
        self._models: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()
        self._key_locks: dict[tuple[str, str], threading.Lock] = {}

    def get(self, kind: str, name: str, factory: Callable[[], T]) -> T:
        """Build ``factory()`` once per (kind, name); concurrent callers wait for the first."""
        key = (kind, name)
        with self._lock:
            if key in self._models:
                return self._models[key]
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:
            if key not in self._models:  # another thread may have finished while we waited
                model = factory()
                with self._lock:
                    self._models[key] = model
            return self._models[key]

    def pop(self, kind: str, name: str) -> Any:
        """Drop one model and hand it back (None if it was not loaded)."""
        with self._lock:
            return self._models.pop((kind, name), None)

    def names(self) -> list[str]:
        """The loaded models, as ``kind:name``, in the order they were loaded."""
        with self._lock:
            return [f"{kind}:{name}" for kind, name in self._models]
