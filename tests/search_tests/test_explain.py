"""`tpsearch explain`: SmoothGrad checked where the gradient is known in closed form, then the command on digits."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn as nn
from PIL import Image

from tpsearch import cli
from tpsearch.checkpoints._explain import _CHUNK, input_gradient, saliency_map, smoothgrad


def reference_map(gradient: np.ndarray) -> np.ndarray:
    """The post-processing as the README states it, in numpy: |g|, clipped at its 99th percentile, summed over
    channels, min-max normalised."""
    magnitude = np.abs(gradient)
    summed = np.minimum(magnitude, np.quantile(magnitude, 0.99)).sum(axis=0)
    return (summed - summed.min()) / (summed.max() - summed.min())


def linear_model(shape: tuple[int, int, int], classes: int = 4) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(int(np.prod(shape)), classes)).eval()


def test_smoothgrad_of_a_linear_model_is_its_weight_row_whatever_the_noise():
    shape = (3, 6, 5)
    model = linear_model(shape)
    x = torch.randn(shape)
    weight_row = model[1].weight[2].detach().view(shape)
    # The gradient of logit c of W x + b is W[c] at every input, so the mean over noisy copies is W[c] itself.
    raw = input_gradient(model, x, 2, samples=50, noise=0.15, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(raw, weight_row, rtol=1e-6, atol=1e-7)
    expected = reference_map(weight_row.numpy())
    for noise in (0.15, 1.0):
        got = smoothgrad(model, x, 2, samples=50, noise=noise, generator=torch.Generator().manual_seed(1))
        assert got.shape == (6, 5)
        np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5, atol=1e-6)
    plain = saliency_map(input_gradient(model, x, 2))
    np.testing.assert_allclose(plain.numpy(), expected, rtol=1e-5, atol=1e-6)
    assert float(got.min()) == 0.0 and float(got.max()) == 1.0


class Quadratic(nn.Module):
    """Logit c is sum(a_c x^2): its gradient 2 a_c x moves with the noise, so the mean shows what noise was added."""

    def __init__(self, a: torch.Tensor) -> None:
        super().__init__()
        self.a = a

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([(a * x * x).flatten(1).sum(1) for a in self.a], dim=1)


def test_the_noise_is_gaussian_with_sigma_a_fraction_of_the_input_range():
    shape = (2, 4, 4)
    torch.manual_seed(0)
    a, x = torch.randn(3, *shape), torch.randn(shape)
    samples, noise, seed = _CHUNK + 6, 0.2, 5  # more than one pass of copies
    raw = input_gradient(Quadratic(a), x, 1, samples=samples, noise=noise,
                         generator=torch.Generator().manual_seed(seed))
    # The same draws, in the same order: a pass of copies, then 6.
    g = torch.Generator().manual_seed(seed)
    eps = torch.cat([torch.randn((_CHUNK, *shape), generator=g), torch.randn((6, *shape), generator=g)])
    sigma = noise * float(x.max() - x.min())
    torch.testing.assert_close(raw, (2 * a[1] * (x + sigma * eps)).mean(0), rtol=1e-5, atol=1e-5)


def test_a_flat_gradient_gives_a_map_of_zeros():
    assert torch.equal(saliency_map(torch.ones(3, 4, 4)), torch.zeros(4, 4))


def test_explain_on_digits_writes_the_page_and_one_png_per_image(digits_pair, tmp_path, capsys):
    page = tmp_path / "maps.html"
    assert cli.main(["explain", str(digits_pair.small), "--test-images", "3", "--samples", "10",
                     "--out", str(page), "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["method"] == "smoothgrad" and out["samples"] == 10 and out["dataset"] == "digits"
    assert [row["source"] for row in out["images"]] == ["test[0]", "test[1]", "test[2]"]
    html = page.read_text()
    assert "plotly" in html.lower() and html.count('class="card"') == 3
    # The answers, computed here from the checkpoint's weights and recorded normalisation, not by explain.
    from tpsearch import load_checkpoint, trainers

    model, meta = load_checkpoint(digits_pair.small)
    recorded = meta["dataset"]
    with torch.no_grad():
        logits = model(trainers.normalize(trainers.load_dataset("digits").test_x[:3], recorded["mean"],
                                          recorded["std"]))
    probabilities = torch.softmax(logits.float(), dim=1)
    classes = [str(c) for c in recorded.get("classes") or range(logits.shape[1])]
    for i, row in enumerate(out["images"]):
        assert row["png"] == str(tmp_path / f"maps_{i}.png")
        expected = int(probabilities[i].argmax())
        assert row["predicted"] == classes[expected], (i, row, probabilities[i])
        assert row["probability"] == pytest.approx(float(probabilities[i, expected]), abs=1e-5)
        assert row["target"] == row["predicted"]  # without --target, each image's predicted class is explained
        with Image.open(row["png"]) as png:
            assert png.format == "PNG" and png.size == (256, 256) and png.mode == "RGB"
        assert row["predicted"] in html  # its caption


def test_an_image_file_is_explained_as_the_same_test_image(digits_pair, tmp_path, capsys):
    from tpsearch import trainers

    image = trainers.load_dataset("digits").test_x[4, 0].numpy()
    Image.fromarray(image, mode="L").save(tmp_path / "four.png")
    runs = {}
    for name, source in (("file", [str(tmp_path / "four.png")]), ("index", ["--index", "4"])):
        assert cli.main(["explain", str(digits_pair.small), *source, "--target", "7", "--samples", "6",
                         "--out", str(tmp_path / f"{name}.html"), "--json"]) == 0
        runs[name] = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["images"][0]
        assert runs[name]["target"] == "7"
    assert runs["file"]["source"].endswith("four.png") and runs["index"]["source"] == "test[4]"
    # Same pixels, same seed: the same map and the same answer.
    assert runs["file"]["probability"] == pytest.approx(runs["index"]["probability"])
    assert runs["file"]["peak"] == runs["index"]["peak"]
    with Image.open(runs["file"]["png"]) as a, Image.open(runs["index"]["png"]) as b:
        assert np.array_equal(np.asarray(a), np.asarray(b))


def test_vanilla_is_the_plain_gradient(digits_pair, tmp_path, capsys):
    assert cli.main(["explain", str(digits_pair.small), "--index", "0", "--method", "vanilla",
                     "--out", str(tmp_path / "v.html"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["method"] == "vanilla" and out["samples"] == 1 and out["noise"] == 0.0


@pytest.mark.parametrize("args, message", [
    (["explain", "{tmp}/none.pt", "--test-images", "1"], "no checkpoint file at"),
    (["explain", "{small}", "{tmp}/none.png"], "no image file at"),
    (["explain", "{small}", "{tmp}/text.png"], "cannot read image"),
    (["explain", "{small}"], "give image files, or --index"),
    (["explain", "{small}", "--index", "9999"], "--index must be below the 359 images"),
    (["explain", "{small}", "--index", "0", "--target", "cat"], "--target must be a class name or an index 0..9"),
    (["explain", "{small}", "--index", "0", "--test-images", "2"], "not several"),
    (["explain", "{small}", "--index", "0", "--noise", "nan"], "--noise must be a finite fraction"),
])
def test_user_errors_are_one_line(args, message, digits_pair, tmp_path, capsys):
    (tmp_path / "text.png").write_text("not an image")
    args = [a.format(tmp=tmp_path, small=digits_pair.small) for a in args]
    assert cli.main([*args, "--out", str(tmp_path / "x.html")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and message in err, err
