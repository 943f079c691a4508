"""Export's other formats, each with the metadata: a torch.export program (.pt2, what PyTorch now prefers for
deployment), ONNX (through the torch.export exporter) and TorchScript (deprecated in PyTorch, kept for the C++ and
mobile runtimes that still load only it)."""
from __future__ import annotations

import io
import json
import warnings
from pathlib import Path
from typing import Any

import torch

from tpsearch._files import atomic_path, atomic_write
from tpsearch.exceptions import UsageError

FORMATS = ("pt2", "onnx", "torchscript")
_SUFFIX = {"pt2": ".pt2", "onnx": ".onnx", "torchscript": ".torchscript.pt"}


def sibling(out: Path, fmt: str) -> Path:
    """best.pt -> best.pt2, best.onnx, best.torchscript.pt."""
    stem = out.name[:-len(out.suffix)] if out.suffix else out.name
    return out.with_name(stem + _SUFFIX[fmt])


def need_onnx() -> None:
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError:
        raise UsageError("--format onnx needs the onnx and onnxscript packages: pip install 'tpsearch[export]'"
                         ) from None


def _example(meta: dict[str, Any]) -> torch.Tensor:
    shape = meta["shape"]
    return torch.zeros(2, shape["in_channels"], shape["image_size"], shape["image_size"])


def _about(meta: dict[str, Any]) -> str:
    """What a reader of the ONNX or TorchScript file needs beside the graph: the input normalisation above all."""
    return json.dumps({"input": "float32 [batch, channels, size, size]: (pixel / 255 - mean) / std per channel",
                       **{k: meta[k] for k in ("space", "arch", "shape", "dataset", "metrics", "provenance")}})


def _batch_dim() -> tuple[dict[int, Any], ...]:
    return ({0: torch.export.Dim("batch")},)


def write_pt2(model: torch.nn.Module, meta: dict[str, Any], path: Path) -> Path:
    """A torch.export program with a dynamic batch dimension (`torch.export.load(path).module()` runs it without
    tpsearch), the metadata as the extra file tpsearch.json."""
    model = model.to("cpu").eval()
    program = torch.export.export(model, (_example(meta),), dynamic_shapes=_batch_dim())
    buffer = io.BytesIO()  # torch.export warns of a file name not ending in .pt2, as the temporary file's does
    torch.export.save(program, buffer, extra_files={"tpsearch.json": _about(meta)})
    return atomic_write(path, buffer.getvalue())


def write_onnx(model: torch.nn.Module, meta: dict[str, Any], path: Path) -> Path:
    """ONNX with a dynamic batch dimension (input `images`, output `logits`), through the torch.export exporter."""
    need_onnx()
    model = model.to("cpu").eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(model, (_example(meta),), None, dynamo=True, input_names=["images"],
                                    output_names=["logits"], dynamic_shapes=_batch_dim(),
                                    verbose=False)
    program.model.metadata_props["tpsearch"] = _about(meta)
    with atomic_path(path) as tmp:
        program.save(tmp, external_data=False)
    return path


def write_torchscript(model: torch.nn.Module, meta: dict[str, Any], path: Path) -> Path:
    """A traced TorchScript module (`torch.jit.load` runs it without tpsearch), with the metadata as an extra file."""
    model = model.to("cpu").eval()
    with warnings.catch_warnings(), atomic_path(path) as tmp:
        warnings.simplefilter("ignore")  # torch.jit is deprecated in favour of torch.export, but still the format
        #                                  that C++ and mobile runtimes load
        traced = torch.jit.trace(model, _example(meta))
        torch.jit.save(traced, str(tmp), _extra_files={"tpsearch.json": _about(meta)})
    return path



WRITERS = {"pt2": write_pt2, "onnx": write_onnx, "torchscript": write_torchscript}
