"""The contract every space fulfils, parametrized from the registry (a new space is tested at once), and a user's
own space loaded as FILE.py:CLASS (the README's example), as `tpsearch run --space` loads it."""
from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest
import torch

from tpsearch import spaces

USER_SPACE = f"{Path(__file__).resolve().parents[2] / 'docs' / 'examples' / 'tiny_cnn.py'}:TinyCNN"
SPACES = [spaces.get(n) for n in spaces.names()] + [spaces.get(USER_SPACE)]


def _numel(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _sampled(space: spaces.Space, n: int, seed: int, **shape) -> list[dict]:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    archs = []
    for _ in range(n):
        trial = study.ask()
        archs.append(space.suggest(trial, **shape))
        study.tell(trial, 0.0)
    return archs


def _samples(space: spaces.Space, main: int, other: int) -> int:
    """How many configurations a sampled check draws: `main` for resnet_5m (what its budgets promise), `other` for
    the rest, whose deep networks cost most of the suite's time to build and whose own tests check their shapes;
    a fifth of that for `backbones`, whose few architectures (six torchvision models, two stems, a width) are each
    ImageNet-sized and checked preset by preset in its own tests."""
    if space.name == "backbones":
        return max(1, other // 5)
    return main if space.name == "resnet_5m" else other


@pytest.fixture(autouse=True)
def _quiet_optuna():
    optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.mark.parametrize("space", SPACES, ids=lambda s: s.name)
def test_count_params_is_exact_on_sampled_configurations(space):
    # Built on the meta device: torch's own modules count every weight, yet nothing is allocated,
    # so configurations of billions of parameters are checked as cheaply as small ones. 500 for resnet_5m (what
    # its budget promises), 200 for the others: building their deep networks costs most of the suite's time here,
    # and each space's own tests check its presets and its particular shapes.
    n = _samples(space, 500, 200)
    archs = _sampled(space, n, seed=0)
    assert len({json.dumps(a, sort_keys=True) for a in archs}) > n // 5  # the draws explore the space
    for arch in archs:
        with torch.device("meta"):
            model = space.build(arch)
        assert space.count_params(arch) == _numel(model), arch


@pytest.mark.parametrize("space", SPACES, ids=lambda s: s.name)
@pytest.mark.parametrize("shape", [dict(num_classes=100, in_channels=1, image_size=8),
                                   dict(num_classes=7, in_channels=3, image_size=20),
                                   dict(num_classes=10, in_channels=4, image_size=64)])
def test_count_params_is_exact_for_other_shapes(space, shape):
    archs = _sampled(space, _samples(space, 100, 40), seed=1, in_channels=shape["in_channels"],
                     image_size=shape["image_size"])
    for arch in archs:
        with torch.device("meta"):
            model = space.build(arch, **shape)
        assert space.count_params(arch, **shape) == _numel(model), arch


@pytest.mark.parametrize("space", SPACES, ids=lambda s: s.name)
def test_small_sampled_models_run_forward_with_real_weights(space):
    archs = [a for a in _sampled(space, 300, seed=2) if space.count_params(a) < 300_000][:8]
    assert archs, "the space should hold small models"
    for arch in archs:
        model = space.build(arch).eval()
        assert space.count_params(arch) == _numel(model)
        with torch.no_grad():
            out = model(torch.randn(2, 3, 32, 32))
        assert out.shape == (2, 10)


@pytest.mark.parametrize("space", SPACES, ids=lambda s: s.name)
def test_presets_are_json_and_exact(space):
    assert space.presets
    for name, arch in space.presets.items():
        assert json.loads(json.dumps(arch)) == arch
        assert space.count_params(arch) == _numel(space.build(arch)), name


@pytest.mark.parametrize("space", SPACES, ids=lambda s: s.name)
def test_suggest_is_define_by_run_and_deterministic(space):
    a = _sampled(space, 20, seed=3)
    b = _sampled(space, 20, seed=3)
    assert a == b
    for arch in a:
        assert space.validate(arch) == arch


@pytest.mark.parametrize("space", SPACES, ids=lambda s: s.name)
def test_count_params_allocates_nothing(space, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("count_params allocated a tensor")

    arch = next(iter(space.presets.values()))
    monkeypatch.setattr(torch, "empty", refuse)
    monkeypatch.setattr(torch.nn.Module, "__init__", refuse)
    assert space.count_params(arch) > 0


def _analytic_macs(space: spaces.Space) -> bool:
    """Whether `count_macs` counts rather than measures: a space's own override, or a `tally` that gives MACs."""
    if type(space).count_macs is not spaces.Space.count_macs:
        return True
    preset = space.validate(next(iter(space.presets.values())))
    return type(space).tally is not spaces.Space.tally and space.tally(preset, 10, 3, 32).macs is not None


def _assert_macs_agree(space: spaces.Space, archs: list[dict], **shape) -> float:
    """Every architecture's `count_macs` within 1% of thop's measurement; returns the largest relative error."""
    worst = 0.0
    for arch in archs:
        counted, measured = space.count_macs(arch, **shape), space.measure_macs(arch, **shape)
        assert isinstance(counted, int) and counted > 0, arch
        error = abs(counted - measured) / measured
        assert error <= 0.01, (arch, shape, counted, measured)
        worst = max(worst, error)
    return worst


def _macs_bounds(space: spaces.Space, arch: dict, **shape) -> tuple[int, int]:
    """Bounds on one image's MACs through `build(arch)`, counted without thop from the shapes a forward pass on the
    meta device really takes: the convolutions' and linear layers' multiply-accumulates (the least any count
    holds), and that plus five operations per element entering any other layer (thop's most is four, for an
    affine batch norm, plus one for pooling)."""
    size = shape.get("image_size", 32)
    with torch.device("meta"):
        model = space.build(arch, **shape)
    counts = {"weights": 0, "elements": 0}

    def hook(module, inputs, output):
        if isinstance(module, torch.nn.Conv2d):
            per_output = module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1]
            counts["weights"] += output.numel() * per_output
        elif isinstance(module, torch.nn.Linear):
            counts["weights"] += output.numel() * module.in_features
        elif inputs and isinstance(inputs[0], torch.Tensor):
            counts["elements"] += inputs[0].numel()

    leaves = [m for m in model.modules() if not list(m.children())]
    handles = [m.register_forward_hook(hook) for m in leaves]
    model.eval()
    model(torch.zeros(1, shape.get("in_channels", 3), size, size, device="meta"))
    for h in handles:
        h.remove()
    return counts["weights"], counts["weights"] + 5 * counts["elements"]


@pytest.mark.parametrize("space", SPACES, ids=lambda s: s.name)
def test_count_macs_agrees_with_thop_on_presets_and_sampled_configurations(space):
    # thop costs a tenth of a second per configuration here: 200 for resnet_5m (whose analytic count --max-macs
    # reads at every draw), 60 for the others (each space's own tests check more of its shapes).
    archs = list(space.presets.values())
    if _analytic_macs(space):
        archs += _sampled(space, _samples(space, 200, 60), seed=0)
        _assert_macs_agree(space, archs)
        return
    # A space that measures (the README's example) would only compare thop with itself: its count is held
    # instead between bounds counted from the built model's own shapes, at CIFAR's shape and another.
    archs += _sampled(space, 10, seed=0)
    for shape in ({}, dict(num_classes=7, in_channels=1, image_size=9)):
        for arch in archs:
            least, most = _macs_bounds(space, arch, **shape)
            assert least <= space.count_macs(arch, **shape) <= most, (arch, shape, least, most)


@pytest.mark.parametrize("space", [s for s in SPACES if _analytic_macs(s)], ids=lambda s: s.name)
@pytest.mark.parametrize("shape", [dict(num_classes=100, in_channels=1, image_size=8),
                                   dict(num_classes=7, in_channels=3, image_size=31)])
def test_count_macs_agrees_with_thop_for_other_shapes(space, shape):
    archs = _sampled(space, _samples(space, 40, 15), seed=6, in_channels=shape["in_channels"],
                     image_size=shape["image_size"])
    _assert_macs_agree(space, archs, **shape)


@pytest.mark.parametrize("space", [s for s in SPACES if _analytic_macs(s)], ids=lambda s: s.name)
def test_analytic_count_macs_allocates_nothing(space, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("count_macs allocated a tensor or built a module")

    for name in ("empty", "zeros", "tensor"):
        monkeypatch.setattr(torch, name, refuse)
    monkeypatch.setattr(torch.nn.Module, "__init__", refuse)
    for arch in space.presets.values():
        assert space.count_macs(arch) > 0


def test_registry_refuses_duplicates_and_lists_names_for_unknown():
    with pytest.raises(spaces.UnknownSpaceError, match="resnet_5m"):
        spaces.get("resnet_9m")

    space_type = type(spaces.get("resnet_5m"))
    with pytest.raises(ValueError, match="registered already"):
        spaces.register(space_type)


@pytest.mark.parametrize("space", SPACES, ids=lambda s: s.name)
def test_params_of_inverts_suggest(space):
    for arch in _sampled(space, 50, seed=4) + list(space.presets.values()):
        params = space.params_of(arch)
        assert space.suggest(optuna.trial.FixedTrial(params)) == space.validate(arch)


@pytest.mark.parametrize("space", SPACES, ids=lambda s: s.name)
def test_smallest_is_a_lower_bound_of_the_space(space):
    # Of parameters and of MACs: `tpsearch run` refuses a --max-params or --max-macs below the smallest's.
    floor, least = space.count_params(space.smallest()), space.count_macs(space.smallest())
    archs = _sampled(space, 300, seed=5)
    assert floor <= min(space.count_params(a) for a in archs)
    if _analytic_macs(space):  # thop is milliseconds a draw: a space that measures is held on its presets above
        assert least <= min(space.count_macs(a) for a in archs)
    assert space.suggest(optuna.trial.FixedTrial(space.params_of(space.smallest()))) == space.smallest()


def test_a_user_space_loads_by_file_or_module_and_is_refused_clearly_when_broken(tmp_path, monkeypatch):
    space = spaces.get(USER_SPACE)
    assert space.name == "tiny_cnn" and spaces.get("tiny_cnn") is space and "tiny_cnn" in spaces.names()
    assert spaces.get(USER_SPACE) is space  # loaded once
    # MODULE:CLASS: the same space as an importable module (under another name, since names are unique).
    source = Path(USER_SPACE.rsplit(":", 1)[0]).read_text().replace('name = "tiny_cnn"', 'name = "my_cnn"')
    (tmp_path / "my_cnn_space.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert spaces.get("my_cnn_space:TinyCNN").name == "my_cnn" and "my_cnn" in spaces.names()
    (tmp_path / "broken.py").write_text("raise ImportError('no such thing')\n")
    (tmp_path / "nospace.py").write_text("class NotASpace:\n    pass\n")
    for spec, message in [(f"{tmp_path}/broken.py:X", "cannot import"), (f"{tmp_path}/nospace.py:Y", "has no 'Y'"),
                          (f"{tmp_path}/nospace.py:NotASpace", "not a subclass"),
                          (f"{tmp_path}/missing.py:Z", "no file"), ("no_such_module_xyz:Z", "cannot import")]:
        with pytest.raises(spaces.UnknownSpaceError, match=message):
            spaces.get(spec)


def test_a_user_space_written_before_tally_still_counts_and_one_that_counts_nothing_is_refused(tmp_path):
    # The example as it was written before `tally`: its own count_params, and count_macs measured by thop.
    source = Path(USER_SPACE.rsplit(":", 1)[0]).read_text()
    old = source.replace('name = "tiny_cnn"', 'name = "old_cnn"').replace(
        "def tally(self, arch, num_classes, in_channels, image_size):",
        "def count_params(self, arch, num_classes=10, in_channels=3, image_size=32):").replace(
        "return Counts(params + c * num_classes + num_classes)", "return params + c * num_classes + num_classes")
    assert "Counts(" not in old.partition("class")[2]
    (tmp_path / "old_cnn.py").write_text(old)
    space = spaces.get(f"{tmp_path}/old_cnn.py:TinyCNN")
    arch = space.presets["small"]
    assert space.count_params(arch) == _numel(space.build(arch)) == spaces.get(USER_SPACE).count_params(arch)
    assert space.count_macs(arch) == space.measure_macs(arch) == spaces.get(USER_SPACE).count_macs(arch)
    (tmp_path / "no_count.py").write_text(source.replace('name = "tiny_cnn"', 'name = "no_count"')
                                          .replace("def tally(", "def not_a_tally("))
    with pytest.raises(spaces.UnknownSpaceError, match="counts nothing: define `tally`"):
        spaces.get(f"{tmp_path}/no_count.py:TinyCNN")
