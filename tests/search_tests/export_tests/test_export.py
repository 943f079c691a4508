"""`tpsearch export` and `tpsearch evaluate` on a real small study, and `load_checkpoint`'s refusals."""
from __future__ import annotations

import json
import pickle
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from tpsearch import spaces
from tpsearch import load_checkpoint
from tpsearch.exceptions import CheckpointError
from tpsearch.cli import main
from tests.search_tests._cli import cli, one_line_error

pytestmark = pytest.mark.slow  # trains the checkpoints it exports

META_KEYS = {"format", "version", "space", "arch", "shape", "dataset", "metrics", "training", "provenance",
             "weights_sha256"}




def _inputs(meta: dict) -> torch.Tensor:
    s = meta["shape"]
    g = torch.Generator().manual_seed(1)
    return torch.randn(6, s["in_channels"], s["image_size"], s["image_size"], generator=g)


@pytest.fixture(scope="module")
def exported(small_study, tmp_path_factory) -> Path:
    """The best trial exported with every extra format, into a folder that does not exist yet."""
    out = tmp_path_factory.mktemp("export") / "new" / "folder" / "best.pt"
    rc = main(["export", "--storage", small_study.storage, "--out", str(out), "--data-dir",
               str(small_study.data_dir), "--runs-dir", str(small_study.root / "runs"), "--format", "onnx",
               "--format", "torchscript", "--format", "pt2", "--json"])
    assert rc == 0
    return out


def test_export_writes_a_plain_checkpoint_with_its_metadata(small_study, exported):
    ckpt = torch.load(exported, weights_only=True)
    assert set(ckpt) == META_KEYS | {"state_dict"}
    trial = small_study.study().trials[small_study.best]
    assert ckpt["space"] == "resnet_5m" and ckpt["arch"] == trial.user_attrs["arch"]
    assert ckpt["shape"] == {"num_classes": 10, "in_channels": 1, "image_size": 8}
    d = ckpt["dataset"]
    assert d["name"] == "digits" and d["classes"] == [str(i) for i in range(10)] and len(d["mean"]) == 1
    m = ckpt["metrics"]
    assert m["val_accuracy"] == trial.value and 0 <= m["test_accuracy"] <= 1
    assert m["params"] == trial.user_attrs["params"] and m["macs"] == trial.user_attrs["macs"]
    assert ckpt["training"]["source"] == "search" and ckpt["training"]["epochs"] == 2
    p = ckpt["provenance"]
    assert (p["study"], p["trial"], p["storage"]) == (small_study.name, small_study.best, small_study.storage)
    assert p["torch"] == torch.__version__ and p["tpsearch"] and p["created"].endswith("+00:00")
    assert not list(exported.parent.glob(".*tmp"))  # no temporary file left behind


def test_fresh_process_predicts_like_the_trials_own_model(small_study, exported, tmp_path):
    # The trial's own model: built from the weights file the search kept for it.
    kept = torch.load(small_study.kept[str(small_study.best)], weights_only=True)
    space = spaces.get(kept["space"])
    own = space.build(kept["arch"], **kept["shape"]).eval()
    own.load_state_dict(kept["state_dict"])
    meta = torch.load(exported, weights_only=True)
    x = _inputs(meta)
    with torch.no_grad():
        expected = own(x)

    torch.save(x, tmp_path / "x.pt")
    script = textwrap.dedent(f"""
        import torch
        from tpsearch import spaces
        from tpsearch import load_checkpoint
        x = torch.load({str(tmp_path / 'x.pt')!r}, weights_only=True)
        ckpt = torch.load({str(exported)!r}, weights_only=True)
        plain = spaces.get(ckpt["space"]).build(ckpt["arch"], **ckpt["shape"]).eval()
        plain.load_state_dict(ckpt["state_dict"])
        model, meta = load_checkpoint({str(exported)!r})
        assert not model.training and "state_dict" not in meta
        with torch.no_grad():
            torch.save({{"plain": plain(x), "loaded": model(x)}}, {str(tmp_path / 'y.pt')!r})
    """)
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
    got = torch.load(tmp_path / "y.pt", weights_only=True)
    for name in ("plain", "loaded"):
        torch.testing.assert_close(got[name], expected, rtol=0, atol=1e-6, msg=name)
        assert torch.equal(got[name].argmax(1), expected.argmax(1))


def test_pt2_onnx_and_torchscript_match_pytorch(exported):
    import onnxruntime as ort

    model, meta = load_checkpoint(exported)
    x = _inputs(meta)[:5]  # another batch size than the export's example: the batch dimension is dynamic
    with torch.no_grad():
        expected = model(x).numpy()
    session = ort.InferenceSession(str(exported.with_suffix(".onnx")), providers=["CPUExecutionProvider"])
    (logits,) = session.run(["logits"], {"images": x.numpy()})
    assert np.abs(logits - expected).max() < 1e-4
    about = json.loads(session.get_modelmeta().custom_metadata_map["tpsearch"])
    assert about["dataset"]["mean"] == meta["dataset"]["mean"] and about["arch"] == meta["arch"]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated, yet still what C++ runtimes load
        scripted = torch.jit.load(str(exported.with_name("best.torchscript.pt")))
    with torch.no_grad():
        assert np.abs(scripted(x).numpy() - expected).max() < 1e-5

    extra = {"tpsearch.json": ""}
    program = torch.export.load(exported.with_suffix(".pt2"), extra_files=extra)
    with torch.no_grad():
        assert np.abs(program.module()(x).numpy() - expected).max() < 1e-5
    assert json.loads(extra["tpsearch.json"])["arch"] == meta["arch"]


@pytest.mark.parametrize("sibling, kind", [("best.pt2", "torch.export program"), ("best.onnx", "ONNX model"),
                                           ("best.torchscript.pt", "TorchScript module")])
def test_evaluate_of_another_format_says_what_the_file_is(exported, capsys, sibling, kind):
    rc, _, err = cli(capsys, "evaluate", str(exported.with_name(sibling)))
    one_line_error(rc, err, kind, "tpsearch export --out FILE.pt")
    assert "pickle" not in err


def test_evaluate_reports_accuracy_per_class_and_confusion(small_study, exported, tmp_path, capsys):
    page = tmp_path / "eval.html"
    rc, out, err = cli(capsys, "evaluate", str(exported), "--data-dir", str(small_study.data_dir), "--json",
                        "--html", str(page))
    assert rc == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    meta = torch.load(exported, weights_only=True)
    assert result["test_accuracy"] == pytest.approx(meta["metrics"]["test_accuracy"])
    assert result["top5_accuracy"] is None  # 10 classes: five guesses would be half the answers
    confusion = np.array(result["confusion_matrix"])
    assert confusion.shape == (10, 10) and confusion.sum() == result["images"] == 359
    assert np.trace(confusion) / confusion.sum() == pytest.approx(result["test_accuracy"])
    assert set(result["per_class_accuracy"]) == set(meta["dataset"]["classes"])
    html = page.read_text()
    assert "Plotly.newPlot" in html and "fig-confusion" in html and "<script src=" not in html

    rc, out, err = cli(capsys, "evaluate", str(exported), "--data-dir", str(small_study.data_dir))
    assert rc == 0, err
    header = next(line for line in out.splitlines() if line.startswith("confusion"))
    rows = out.splitlines()[out.splitlines().index(header) + 2:][:10]  # under the predicted classes' header
    assert [[int(n) for n in row.split()[1:]] for row in rows] == result["confusion_matrix"]


def _malicious(marker: Path) -> object:
    class Evil:
        def __reduce__(self):  # unpickling would call open(marker, "w"): a file appears if code ever runs
            return (open, (str(marker), "w"))

    return Evil()


@pytest.mark.parametrize("how", ["torch.save", "pickle"])
def test_a_checkpoint_holding_code_is_refused_and_never_run(tmp_path, capsys, how):
    marker = tmp_path / "pwned"
    path = tmp_path / "best.pt"
    payload = {"format": "tpsearch-checkpoint", "state_dict": {}, "space": _malicious(marker)}
    if how == "torch.save":
        torch.save(payload, path)
    else:
        path.write_bytes(pickle.dumps(payload))
    with pytest.raises(CheckpointError, match="refusing"):
        load_checkpoint(path)
    rc, out, err = cli(capsys, "evaluate", str(path))
    one_line_error(rc, err, "refusing", *(["the global io.open"] if how == "torch.save" else []))
    assert not marker.exists()


def test_truncated_tampered_and_mismatched_checkpoints_are_refused(exported, tmp_path, capsys):
    truncated = tmp_path / "truncated.pt"
    data = exported.read_bytes()
    truncated.write_bytes(data[:len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        load_checkpoint(truncated)
    rc, out, err = cli(capsys, "evaluate", str(truncated))
    one_line_error(rc, err, "truncated")

    ckpt = torch.load(exported, weights_only=True)
    name = next(k for k, v in ckpt["state_dict"].items() if v.is_floating_point())
    ckpt["state_dict"][name].view(-1)[0] += 0.5
    tampered = tmp_path / "tampered.pt"
    torch.save(ckpt, tampered)
    with pytest.raises(CheckpointError, match="SHA-256"):
        load_checkpoint(tampered)
    rc, out, err = cli(capsys, "evaluate", str(tampered))
    one_line_error(rc, err, "altered")

    # Consistent hash, but weights of another architecture: the names and shapes are checked too.
    from tpsearch.checkpoints import weights_sha256

    ckpt = torch.load(exported, weights_only=True)
    ckpt["arch"] = {**ckpt["arch"], "channels": ckpt["arch"]["channels"] + 2}
    ckpt["weights_sha256"] = weights_sha256(ckpt["state_dict"])
    torch.save(ckpt, tmp_path / "mismatch.pt")
    with pytest.raises(CheckpointError, match="do not fit its architecture"):
        load_checkpoint(tmp_path / "mismatch.pt")


def test_cli_refuses_bad_input_in_one_line(small_study, tmp_path, capsys):
    s = ["--storage", small_study.storage, "--data-dir", str(small_study.data_dir)]
    out = str(tmp_path / "x.pt")
    one_line_error(*cli(capsys, "export", *s, "--study", "nope", "--out", out)[::2], "no study named 'nope'")
    one_line_error(*cli(capsys, "export", *s, "--trial", "9999", "--out", out)[::2], "has no trial 9999")
    infeasible = next(t.number for t in small_study.study().trials if t.user_attrs.get("feasible") is False)
    one_line_error(*cli(capsys, "export", *s, "--trial", str(infeasible), "--out", out)[::2],
                    "infeasible", f"best completed trial is {small_study.best}")
    one_line_error(*cli(capsys, "export", "--storage", f"sqlite:///{tmp_path}/none.db", "--out", out)[::2],
                    "no study storage")
    (tmp_path / "file").write_text("")
    one_line_error(*cli(capsys, "export", *s, "--out", str(tmp_path / "file" / "best.pt"))[::2],
                    "cannot create the folder")
    one_line_error(*cli(capsys, "export", *s, "--out", str(tmp_path))[::2], "is a directory")
    one_line_error(*cli(capsys, "evaluate", str(tmp_path / "missing.pt"))[::2], "no checkpoint file")
    one_line_error(*cli(capsys, "evaluate", str(tmp_path))[::2], "is not a file")
    # A per-trial file of the search is no export: evaluate says what it is.
    one_line_error(*cli(capsys, "evaluate", small_study.kept[str(small_study.best)])[::2],
                    "not a tpsearch export")
    assert not Path(out).exists()


def test_a_trial_without_kept_weights_suggests_retrain(small_study, tmp_path, capsys):
    copy = small_study.copy(tmp_path / "copy")
    study = copy.study()
    study.set_user_attr("checkpoints", {k: v for k, v in copy.kept.items() if int(k) != copy.best})
    rc, out, err = cli(capsys, "export", "--storage", copy.storage, "--trial", str(copy.best), "--out",
                        str(tmp_path / "x.pt"))
    one_line_error(rc, err, f"trial {copy.best} has no kept weights", "--retrain")
