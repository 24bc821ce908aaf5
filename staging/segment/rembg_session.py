"""rembg sessions (IS-Net, BiRefNet, ...) on model files that *our* model store resolved.

rembg downloads its weights on first use (pooch, into ``~/.u2net``). We never let it: each
session class is subclassed on the fly so that ``download_models`` returns the file our registry
found, and a missing file fails fast with a message naming where to put it. rembg itself is an
optional dependency, imported only when one of these backends is built.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from staging.errors import ModelNotAvailableError, StagingError, UnknownNameError
from staging.runtime import onnx_providers
from staging.segment.base import Segmenter

# rembg sessions we cannot drive with one local file: SAM needs an encoder + decoder and point
# prompts. Sessions that send the image to a web service (``is_local() is False``) are refused
# too: this tool must never upload a user's photos.
_UNSUPPORTED = {"sam": "it needs two model files and point prompts"}


def _rembg_sessions() -> dict:
    try:
        from rembg.sessions import sessions
    except ImportError as exc:
        raise StagingError(
            "The rembg backends need the optional 'rembg' package: pip install rembg "
            f"(or pip install 'product-staging-studio[rembg]'). Import failed: {exc}"
        ) from exc
    return sessions


def _local_session_class(session_name: str, model_path: Path):
    """rembg's session class for ``session_name``, patched to load ``model_path`` only."""
    sessions = _rembg_sessions()
    base = sessions.get(session_name)
    if base is None or session_name in _UNSUPPORTED or not base.is_local():
        usable = sorted(n for n, c in sessions.items() if c.is_local() and n not in _UNSUPPORTED)
        if base is None:
            why = "rembg has no such session"
        elif session_name in _UNSUPPORTED:
            why = f"it is not supported here: {_UNSUPPORTED[session_name]}"
        else:
            why = "it sends images to a web service"
        raise UnknownNameError(
            f"Cannot use rembg session {session_name!r}: {why}. Local rembg sessions: "
            f"{', '.join(usable)}."
        )
    path = str(model_path)

    def download_models(cls, *args, **kwargs):  # noqa: ARG001 - rembg's signature
        return path

    def _warn_on_provider_fallback(self, requested):
        # Our provider list may hold ("CUDAExecutionProvider", {...}) tuples; rembg's warning
        # joins plain names only.
        names = [p[0] if isinstance(p, tuple) else p for p in requested]
        return base._warn_on_provider_fallback(self, names)

    return type(
        f"Staging{base.__name__}",
        (base,),
        {
            "download_models": classmethod(download_models),
            "_warn_on_provider_fallback": _warn_on_provider_fallback,
            "__module__": __name__,
        },
    )


class RembgSegmenter(Segmenter):
    """A rembg session on a local model file.

    Args:
        session_name: rembg's session name (``isnet-general-use``, ``birefnet-general``,
            ``u2net_custom``, ...).
        model_path: the ONNX file to load (resolved by our model store; rembg downloads nothing).
        runtime: device and threads.
        name: the backend name reported in results; default ``session_name``.
    """

    def __init__(self, session_name: str, model_path: str | Path, runtime, name: str | None = None):
        import onnxruntime as ort

        model_path = Path(model_path)
        if not model_path.is_file():
            raise ModelNotAvailableError(
                f"The model file for rembg session {session_name!r} is missing: {model_path}."
            )
        session_class = _local_session_class(session_name, model_path)
        options = ort.SessionOptions()
        if runtime.threads:
            options.intra_op_num_threads = runtime.threads
            options.inter_op_num_threads = 1
        try:
            self.session = session_class(
                session_name,
                options,
                providers=onnx_providers(runtime.device),
                model_path=str(model_path),  # the *_custom sessions insist on it
            )
        except StagingError:
            raise
        except Exception as exc:  # onnxruntime's Fail/InvalidGraph, rembg's ValueErrors
            raise StagingError(
                f"Could not load {model_path} as rembg session {session_name!r}: {exc}"
            ) from exc
        self.session_name = session_name
        self.model_path = model_path
        self.name = name or session_name

    @classmethod
    def from_models_dir(cls, session_name: str, runtime) -> RembgSegmenter:
        """``rembg:<session>``: the file ``<session>.onnx`` from one of the models dirs."""
        _local_session_class(session_name, Path())  # unknown / unsupported names fail first
        fname = f"{session_name}.onnx"
        for root in runtime.store.dirs:
            candidate = Path(root) / fname
            if candidate.is_file():
                return cls(session_name, candidate, runtime, name=f"rembg:{session_name}")
        searched = ", ".join(str(d) for d in runtime.store.dirs)
        from staging.models import REGISTRY

        hint = (
            f"Fetch it with:\n    staging models pull {session_name}\nor save"
            if session_name in REGISTRY
            else "Download it (rembg's release page lists the files) and save"
        )
        raise ModelNotAvailableError(
            f"rembg session {session_name!r} needs the model file {fname}, which is not in the "
            f"models directory ({searched}). {hint} it as {Path(runtime.store.dirs[0]) / fname}."
        )

    @classmethod
    def from_file(cls, path: str | Path, runtime) -> RembgSegmenter:
        """A custom U^2-Net-style ONNX file through rembg's ``u2net_custom`` session."""
        path = Path(path).expanduser()
        if not path.is_file():
            raise ModelNotAvailableError(
                f"Custom segmentation model {str(path)!r} does not exist (or is not a file)."
            )
        return cls("u2net_custom", path, runtime, name=f"rembg:u2net_custom:{path.name}")

    def predict(self, image: np.ndarray) -> np.ndarray:
        height, width = image.shape[:2]
        mask = self.session.predict(Image.fromarray(image).convert("RGB"))[0]
        if mask.size != (width, height):
            mask = mask.resize((width, height), Image.BILINEAR)
        prob = np.asarray(mask.convert("L"), dtype=np.float32) / 255.0
        return np.clip(prob, 0.0, 1.0)
