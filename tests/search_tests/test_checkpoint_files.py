"""A file that is no checkpoint (truncated, empty, garbage, another format, bare weights) is refused in one line that
says what is wrong with the file, by `load_checkpoint` and by `tpsearch evaluate` (issue 26, item 6): before, some
said only "Invalid argument", "EOFError", "format None" or a pickle opcode number."""
from __future__ import annotations

import gzip
import json
import pickle
import zipfile
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch

from tpsearch import load_checkpoint, spaces
from tpsearch.exceptions import CheckpointError
from tpsearch.checkpoints import make_checkpoint, save_atomic, save_checkpoint
from tests.search_tests._cli import cli, one_line_error

SHAPE = {"num_classes": 10, "in_channels": 1, "image_size": 8}


def _model() -> torch.nn.Module:
    space = spaces.get("resnet_5m")
    return space.build({"layers": 1, "blocks": [1], "channels": 8}, **SHAPE)


def _meta() -> dict:
    arch = spaces.get("resnet_5m").validate({"layers": 1, "blocks": [1], "channels": 8}, in_channels=1, image_size=8)
    return {"space": "resnet_5m", "arch": arch, "shape": SHAPE, "dataset": {}, "metrics": {}, "training": {},
            "provenance": {}}


def _checkpoint_bytes(tmp: Path) -> bytes:
    return save_checkpoint(_model(), tmp / "good.pt", _meta()).read_bytes()


def _without_format(path: Path) -> None:
    ckpt = make_checkpoint(_model(), _meta())
    del ckpt["format"]
    save_atomic(ckpt, path)


MAKERS: dict[str, tuple[Callable[[Path, bytes], None], str]] = {
    "truncated": (lambda p, good: p.write_bytes(good[:len(good) // 2]), "is truncated: a zip archive"),
    "cut after 10 bytes": (lambda p, good: p.write_bytes(good[:10]), "is truncated: a zip archive"),
    "legacy format, truncated": (
        lambda p, good: p.write_bytes(_legacy(_model().state_dict())[:500]), "is truncated: it ends early"),
    "empty": (lambda p, good: p.write_bytes(b""), "is empty (0 bytes)"),
    "garbage": (lambda p, good: p.write_bytes(bytes(range(200, 256)) * 40), "are neither a zip archive nor"),
    "text": (lambda p, good: p.write_text("epoch 1 loss 0.5\n"), "is a text file (it begins 'epoch 1"),
    "json": (lambda p, good: p.write_text(json.dumps({"arch": {}})), "is a text file"),
    "gzip": (lambda p, good: p.write_bytes(gzip.compress(good)), "gzip-compressed"),
    "numpy": (lambda p, good: np.save(p.open("wb"), np.zeros(3)), "a NumPy array"),
    "pickle": (lambda p, good: p.write_bytes(pickle.dumps({"a": 1})), "a pickle that torch.save did not write"),
    "zip": (lambda p, good: zipfile.ZipFile(p, "w").writestr("notes.txt", "hi"), "not one torch.save wrote"),
    "bare state_dict": (lambda p, good: torch.save(_model().state_dict(), p), "holds bare weights"),
    "no format entry": (lambda p, good: _without_format(p), "without its 'format' entry"),
}


def _legacy(obj) -> bytes:
    import io

    buffer = io.BytesIO()
    torch.save(obj, buffer, _use_new_zipfile_serialization=False)
    return buffer.getvalue()


@pytest.mark.parametrize("case", list(MAKERS))
def test_a_broken_file_is_refused_saying_what_is_wrong(tmp_path, capsys, case):
    make, says = MAKERS[case]
    path = tmp_path / "best.pt"
    make(path, _checkpoint_bytes(tmp_path))
    with pytest.raises(CheckpointError, match=None) as caught:
        load_checkpoint(path)
    message = str(caught.value)
    assert says in message and "\n" not in message, message
    for cryptic in ("Invalid argument", "EOFError", "format None", "opcode", "miniz"):
        assert cryptic not in message, message
    one_line_error(*cli(capsys, "evaluate", str(path))[::2], says)
