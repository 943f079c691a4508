"""The exported checkpoint: its format, an atomic writer and a loader that never runs code from the file.

A checkpoint is one `torch.save` of a dict holding only tensors and plain containers (dict, list, str, int, float,
bool, None), so `torch.load(path, weights_only=True)` reads it without unpickling any code:

    state_dict       {name: tensor}: the weights, on the CPU
    format, version  "tpsearch-checkpoint", 1
    space, arch      the space name and the architecture dict: `spaces.get(space).build(arch, **shape)`; a
                     space of your own is named FILE.py:CLASS or MODULE:CLASS, and is only loaded when the reader
                     names it too (`_trust`)
    space_source     only for a space of your own: {name, file (absolute), class} or {name, module, class}
    shape            {num_classes, in_channels, image_size}: the rest of `build`'s arguments
    dataset          {name, classes, in_channels, image_size, mean, std, seed}: what the inputs were and how
                     they were normalised (per channel, on the 0..1 scale)
    metrics          {val_accuracy, test_accuracy, params, macs}; an accuracy is None where it was not measured
    training         {source: "search" or "retrain", epochs, hparams, on, seed, history, val_accuracy_meaningful}
    provenance       {study, trial, storage (password redacted), tpsearch, torch, created (UTC, ISO 8601)}
    weights_sha256   hex digest of the weights (names, dtypes, shapes and bytes, in name order)
    quantization     only in a quantized export (`tpsearch export --quantize`): the method, the packed codes and
                     scales, sizes and the full-precision accuracy (see `_quantize`); the state_dict then holds
                     the dequantized weights, and `load_checkpoint` returns the model that computes with them

The per-trial files that `tpsearch run` keeps are written by the same `save_checkpoint`, with format
"tpsearch-trial" and only `space`, `arch` and `shape` beside the weights, so a reader of one reads the other.
"""
from __future__ import annotations

import io
import math
import os
import pickle
import re
import warnings
import zipfile
from pathlib import Path
from typing import Any, Mapping

import torch

from tpsearch import spaces
from tpsearch._files import atomic_write
from tpsearch.exceptions import CheckpointError, UsageError
from tpsearch.checkpoints._digest import weights_sha256
from tpsearch.checkpoints._trust import checkpoint_space

FORMAT = "tpsearch-checkpoint"
TRIAL_FORMAT = "tpsearch-trial"  # the weights a search keeps per trial: no data set, metrics or provenance yet
VERSION = 1
META_KEYS = ("space", "arch", "shape", "dataset", "metrics", "training", "provenance", "weights_sha256")
SHAPE_KEYS = ("num_classes", "in_channels", "image_size")


def make_checkpoint(model: torch.nn.Module, meta: Mapping[str, Any], *, kind: str = "export") -> dict[str, Any]:
    """The dict to save: the model's weights on the CPU, the metadata, the format tag and the weights' digest.

    `kind` "export" is the full format above; "trial" tags the per-trial weights a search keeps.
    """
    state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
    ckpt = {"format": FORMAT if kind == "export" else TRIAL_FORMAT, "version": VERSION, "state_dict": state,
            **{k: v for k, v in meta.items() if k != "weights_sha256"}, "weights_sha256": weights_sha256(state)}
    problem = _first_non_plain(ckpt, "checkpoint")
    if problem:  # our own bug, not the user's: keep the traceback
        raise TypeError(f"a checkpoint holds tensors and plain containers only, but {problem}")
    return ckpt


def save_checkpoint(model: torch.nn.Module, path: str | os.PathLike, meta: Mapping[str, Any], *,
                    kind: str = "export") -> Path:
    """`make_checkpoint` written atomically to `path`: the one checkpoint writer of tpsearch."""
    return save_atomic(make_checkpoint(model, meta, kind=kind), Path(path))


def save_atomic(obj: Any, path: Path) -> Path:
    """`torch.save` of `obj`, written atomically (a reader never sees half a file)."""
    # Serialised in memory first: torch.save straight to a full disk fails with a RuntimeError from its C++
    # writer, while a plain write fails with the OSError (ENOSPC) that callers can tell apart.
    return atomic_write(path, to_bytes(obj))


def to_bytes(obj: Any) -> bytes:
    """The bytes `torch.save` writes for `obj`: how a trial's weights travel from its worker to the driver."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def read_plain(path: str | os.PathLike, what: str = "checkpoint") -> dict[str, Any]:
    """A dict from a `torch.save` file, read with `weights_only=True`; refused unless tensors and plain containers.

    Every failure is one `CheckpointError` line that says what is wrong with the file: missing or unreadable, empty,
    truncated, another format (what it is, from its first bytes: `_sniff`), a pickled object of any other class
    (which the weights-only unpickler declines to construct, so no code runs), or a dict that is no checkpoint.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"no {what} file at {str(path)!r}")
    if not path.is_file():
        raise CheckpointError(f"{what} {str(path)!r} is not a file")
    try:
        with open(path, "rb") as f:
            head = f.read(64)
        size = path.stat().st_size
    except OSError as e:
        raise CheckpointError(f"cannot read {what} {str(path)!r}: {e.strerror or e}") from None
    if size == 0:
        raise CheckpointError(f"{what} {str(path)!r} is empty (0 bytes): was it copied before it was written?")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. "pickle protocol 4 detected": the error below says it all
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for a truncated or foreign file, some of them OSError
        kind = _sniff(path, head, size)
        if kind == _FOREIGN_PICKLE:
            raise CheckpointError(f"refusing {what} {str(path)!r}: it is {kind}") from None
        if kind:
            raise CheckpointError(f"{what} {str(path)!r} is {kind}") from None
        if isinstance(e, EOFError):  # the pickle of torch.save's legacy format ends before its contents do
            raise CheckpointError(f"{what} {str(path)!r} is truncated: it ends early, at {size:,} bytes; copy or "
                                  f"export it again") from None
        if isinstance(e, pickle.UnpicklingError):
            raise CheckpointError(f"refusing {what} {str(path)!r}: it holds pickled objects other than tensors and "
                                  f"plain containers ({_unsupported(e)}); it is never unpickled as code") from None
        raise CheckpointError(f"{what} {str(path)!r} is damaged ({size:,} bytes that PyTorch cannot read: "
                              f"{_first_sentence(e)})") from None
    if isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{what} {str(path)!r} holds bare weights ({len(obj)} tensors, a state_dict) and no "
                              f"architecture: tpsearch reads the files `tpsearch export` writes")
    if not isinstance(obj, dict):
        raise CheckpointError(f"{what} {str(path)!r} holds a {type(obj).__name__}, not a dict")
    problem = _first_non_plain(obj, what)
    if problem:
        raise CheckpointError(f"refusing {what} {str(path)!r}: {problem}")
    return obj


# torch.save's legacy (non-zip) format opens with a pickled magic number: protocol 2, LONG1 of 10 bytes.
_LEGACY_TORCH = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19"
_FOREIGN_PICKLE = "a pickle that torch.save did not write (pickle.dump?); tpsearch never unpickles code"
_READS = "tpsearch reads the FILE.pt checkpoint that `tpsearch export --out FILE.pt` writes"


def _sniff(path: Path, head: bytes, size: int) -> str | None:
    """What a file that torch.load declined is, from its first bytes ("a text file ..."), or None where it looks
    like a PyTorch file after all (then the loader's own complaint is the best there is)."""
    if head.startswith(b"PK\x03\x04"):  # a zip archive: what torch.save writes, and torch.export, TorchScript
        if not zipfile.is_zipfile(path):
            return (f"truncated: a zip archive (the format torch.save writes) whose end is missing, {size:,} bytes; "
                    f"copy or export it again")
        try:
            with zipfile.ZipFile(path) as z:
                members = z.namelist()
            names = [n.partition("/")[2] for n in members]  # torch's members sit in one top folder
        except (OSError, zipfile.BadZipFile):
            return None
        if "archive_format" in names:
            return f"a torch.export program (.pt2): run it with torch.export.load(path).module(); {_READS}"
        if "constants.pkl" in names or any(n.startswith("code/") for n in names):
            return f"a TorchScript module: run it with torch.jit.load(path); {_READS}"
        if "data.pkl" not in names:
            return f"a zip archive, but not one torch.save wrote (it holds {', '.join(members[:3]) or 'nothing'})"
        return None
    if head.startswith(b"\x93NUMPY"):
        return "a NumPy array (numpy.save), not a PyTorch checkpoint"
    if head.startswith(b"\x1f\x8b"):
        return "gzip-compressed: decompress it (gunzip) and give the file inside"
    header = int.from_bytes(head[:8], "little") if len(head) >= 9 else 0
    if 0 < header < size and head[8:9] == b"{":  # 8 bytes of header length, then its JSON
        return f"a safetensors file, not a PyTorch checkpoint; {_READS}"
    if path.suffix.lower() == ".onnx" or head[:1] == b"\x08":  # ONNX: field 1 (ir_version), a varint: byte 0x08
        return f"an ONNX model: run it with onnxruntime; {_READS}"
    if head.startswith(b"\x80"):  # a pickle
        if head.startswith(_LEGACY_TORCH):
            return None  # torch.save's old format: its loader says what it refused
        return _FOREIGN_PICKLE
    text = _utf8(head)
    if text and all(c.isprintable() or c in "\t\r\n" for c in text):
        return f"a text file (it begins {text[:24]!r}), not a PyTorch checkpoint"
    return f"not a PyTorch checkpoint: its first bytes ({head[:4].hex(' ')}) are neither a zip archive nor a pickle"


def load_checkpoint(path: str | os.PathLike, *, device: str | torch.device = "cpu",
                    space: str | spaces.Space | None = None) -> tuple[torch.nn.Module, dict[str, Any]]:
    """`(model, meta)` from a checkpoint `tpsearch export` wrote: the model rebuilt through its space, in eval mode.

    The file is read with `torch.load(..., weights_only=True)`, its weights checked against their SHA-256 and their
    names and shapes against the architecture before anything real is built; anything else raises
    `CheckpointError` (a `ValueError`) with one line. A checkpoint of a space of your own (FILE.py:CLASS or
    MODULE:CLASS) loads only when you name that space as `space` (a spec, a name or a `Space`): the file's word
    never makes tpsearch import or run anything (see `_trust`). `meta` is every key but `state_dict` (see the
    module docstring). A quantized checkpoint's model computes with its quantized weights: ternary and binary ones
    are the space's module (checked against their codes), an int8 one is torch.ao's converted module, which runs
    on the CPU only.
    """
    ckpt = read_plain(path)
    meta = check_meta(ckpt, path)
    state = ckpt["state_dict"]
    digest = weights_sha256(state)
    if digest != meta["weights_sha256"]:
        raise CheckpointError(f"checkpoint {str(path)!r} is damaged or was altered: its weights' SHA-256 is "
                              f"{digest[:16]}..., but it records {str(meta['weights_sha256'])[:16]}...")
    model = build_model(meta, state, path, checkpoint_space(meta, f"checkpoint {str(path)!r}", space))
    if meta.get("quantization") is not None:
        from tpsearch.checkpoints._quantize import apply_quantization

        where = f"checkpoint {str(path)!r}"
        model = apply_quantization(model, meta["quantization"], meta["shape"], where)
        if meta["quantization"]["method"] == "int8" and torch.device(device).type != "cpu":
            raise UsageError(f"{where} holds an int8 model, which runs on the CPU only, but device {str(device)!r} "
                             f"was asked for")
    return model.to(device).eval(), meta


def check_meta(ckpt: Mapping[str, Any], path: str | os.PathLike) -> dict[str, Any]:
    where = f"checkpoint {str(path)!r}"
    if "format" not in ckpt:
        keys = ", ".join(repr(k) for k in list(ckpt)[:5]) + (", ..." if len(ckpt) > 5 else "")
        raise CheckpointError(f"{where} is not a tpsearch export: a dict without its 'format' entry (it holds "
                              f"{keys or 'nothing'}); {_READS}")
    if ckpt.get("format") != FORMAT:
        hint = (" (a per-trial file of `tpsearch run`: export it with `tpsearch export`)"
                if ckpt.get("format") == TRIAL_FORMAT else "")
        raise CheckpointError(f"{where} is not a tpsearch export: its format is {ckpt.get('format')!r}, not "
                              f"{FORMAT!r}{hint}")
    if ckpt.get("version") != VERSION:
        raise CheckpointError(f"{where} has format version {ckpt.get('version')!r}; this tpsearch reads {VERSION}")
    missing = [k for k in ("state_dict", *META_KEYS) if k not in ckpt]
    if missing:
        raise CheckpointError(f"{where} lacks {', '.join(missing)}")
    state, shape = ckpt["state_dict"], ckpt["shape"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{where}: state_dict must map names to tensors")
    if not isinstance(ckpt["arch"], dict) or not isinstance(ckpt["space"], str):
        raise CheckpointError(f"{where}: space must be a name and arch a dict")
    if not isinstance(shape, dict) or any(isinstance(shape.get(k), bool) or not isinstance(shape.get(k), int)
                                          or shape[k] < 1 for k in SHAPE_KEYS):
        raise CheckpointError(f"{where}: shape must hold positive integers {', '.join(SHAPE_KEYS)}, "
                              f"but holds {shape!r}")
    return {k: v for k, v in ckpt.items() if k != "state_dict"}


def build_model(meta: Mapping[str, Any], state: Mapping[str, torch.Tensor], path: str | os.PathLike,
                space: spaces.Space) -> torch.nn.Module:
    """`space`'s module for `meta`'s architecture, with `state` loaded, once `check_fits` has passed."""
    where = f"checkpoint {str(path)!r}"
    shape = {k: meta["shape"][k] for k in SHAPE_KEYS}
    check_fits(space, meta["arch"], shape, state, where)
    model = space.build(meta["arch"], **shape)
    model.load_state_dict(state, strict=True)
    return model


def check_fits(space: spaces.Space, arch: Mapping[str, Any], shape: Mapping[str, int],
               state: Mapping[str, torch.Tensor], where: str) -> None:
    """Refuse, before a single weight is allocated, an architecture that the weights do not fit exactly.

    The architecture is the file's word, the weights are what the file holds: an `arch` edited to 4096 channels
    beside the weights of a small network would otherwise build a model of billions of parameters (all the
    machine's memory) before `load_state_dict` noticed. First the analytic count, which costs nothing: the
    parameters are part of the state dict, so they cannot outnumber its elements. Then the names and shapes of a
    model built on the meta device, which allocates no storage.
    """
    try:
        params = space.count_params(arch, **shape)
        held = sum(t.numel() for t in state.values())
        if params > held:
            raise CheckpointError(f"{where}: its weights do not fit its architecture: the architecture has "
                                  f"{params:,} parameters, but the file holds {held:,} numbers in all")
        with torch.device("meta"):
            expected = space.build(arch, **shape).state_dict()
    except CheckpointError:
        raise
    except UsageError as e:  # an architecture the space cannot build
        raise CheckpointError(f"{where}: {e}") from None
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = [k for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k].shape)]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (first {missing[0]!r})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (first {unexpected[0]!r})")
        if wrong:
            k = wrong[0]
            parts.append(f"{len(wrong)} of another shape (first {k!r}: {tuple(state[k].shape)} in the file, "
                         f"{tuple(expected[k].shape)} in the architecture)")
        raise CheckpointError(f"{where}: its weights do not fit its architecture: {'; '.join(parts)}")


_PLAIN = (str, int, float, bool, type(None))


def _first_non_plain(obj: Any, where: str, depth: int = 0) -> str | None:
    """None when `obj` is tensors and plain containers only; else what is not, and where."""
    if depth > 64:
        return f"{where} nests deeper than 64 levels"
    if isinstance(obj, torch.Tensor):
        return None
    if type(obj) in _PLAIN:
        return None
    if type(obj) is dict:
        for k, v in obj.items():
            if type(k) not in _PLAIN:
                return f"{where} has a key of type {type(k).__name__}"
            problem = _first_non_plain(v, f"{where}[{k!r}]", depth + 1)
            if problem:
                return problem
        return None
    if type(obj) in (list, tuple):
        for i, v in enumerate(obj):
            problem = _first_non_plain(v, f"{where}[{i}]", depth + 1)
            if problem:
                return problem
        return None
    return f"{where} holds a {type(obj).__module__}.{type(obj).__qualname__}"


def json_safe(value: Any) -> Any:
    """Plain containers for metadata: non-finite floats become None (JSON has no NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def _unsupported(e: BaseException) -> str:
    # torch's message runs to a dozen lines; the name of the refused global is the part worth one line.
    text = str(e)
    m = re.search(r"Unsupported global: GLOBAL ([\w.]+)", text)
    if m:
        return f"the global {m.group(1)}"
    m = re.search(r"Unsupported operand (\d+)", text)
    if m:
        return f"pickle opcode {m.group(1)}, outside what weights-only loading reads"
    return _first_line(e)


def _utf8(head: bytes) -> str | None:
    """`head` as UTF-8 text, allowing for a character cut at its end; None if it is not UTF-8."""
    for cut in range(4):
        try:
            return head[:len(head) - cut].decode("utf-8")
        except UnicodeDecodeError:
            continue
    return None


def _first_sentence(e: BaseException) -> str:
    """The first sentence of an error's first line: torch's miniz errors go on for three more."""
    line = _first_line(e)
    return line.split(". ", 1)[0].rstrip(".")


def _first_line(e: BaseException) -> str:
    lines = [line.strip() for line in str(e).strip().splitlines() if line.strip()]
    return lines[0] if lines else type(e).__name__
