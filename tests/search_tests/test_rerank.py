"""`tpsearch rerank` on digits: K x S trainings in a linked study through the driver, each recording its source
trial; the table, --json and the page; a second call that trains nothing; export taking the re-ranked winner; and
the re-ranked order itself on hand-written values."""
from __future__ import annotations

import json

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from tpsearch.planned import rerank_winner, reranked
from tpsearch import cli
from tpsearch.search import run_search
from tpsearch.storages import open_storage
from tpsearch.testing.search import run_options

pytestmark = pytest.mark.slow  # trains

SOURCE = "tiny-search"


def _rerank(tmp_path, capsys, *extra: str) -> tuple[dict, str]:
    args = ["rerank", "--study", SOURCE, "--top", "2", "--seeds", "2", "--epochs", "1", "--train-images", "256",
            "--data-dir", str(tmp_path / "data"), "--storage", f"sqlite:///{tmp_path}/studies.db",
            "--runs-dir", str(tmp_path / "runs"), "--no-progress", "--json", *extra]
    assert cli.main(args) == 0
    out, err = capsys.readouterr()
    return json.loads(out.strip().splitlines()[-1]), err


def _export(tmp_path, capsys, *extra: str) -> str:
    args = ["export", "--study", SOURCE, "--storage", f"sqlite:///{tmp_path}/studies.db", "--out",
            str(tmp_path / "best.pt"), "--data-dir", str(tmp_path / "data"), "--runs-dir", str(tmp_path / "runs"),
            "--no-progress", "--no-test", *extra]
    assert cli.main(args) == 0
    return capsys.readouterr().out


def test_rerank_retrains_the_top_k_over_seeds_in_a_linked_study_and_export_takes_its_winner(ray_session, tmp_path,
                                                                                          capsys):
    search = run_search(run_options(tmp_path, study=SOURCE, trials=4, epochs=1, max_params=60_000))
    assert search.finished == 4
    storage = f"sqlite:///{tmp_path}/studies.db"
    source = optuna.load_study(study_name=SOURCE, storage=storage)
    top2 = [t.number for t in sorted(source.get_trials(states=(TrialState.COMPLETE,)),
                                     key=lambda t: (-t.value, t.number))[:2]]

    result, table = _rerank(tmp_path, capsys)
    assert (result["rerank_study"], result["trained_now"], result["missing"]) == (f"{SOURCE}-rerank", 4, 0)
    assert result["candidates"] == top2 and result["search_best"] == top2[0]
    study = optuna.load_study(study_name=f"{SOURCE}-rerank", storage=storage)
    assert (study.user_attrs["source_study"], study.user_attrs["epochs"], study.user_attrs["train_images"]) == \
        (SOURCE, 1, 256)
    trials = study.get_trials(states=(TrialState.COMPLETE,))
    assert sorted((t.user_attrs["source_trial"], t.user_attrs["seed"]) for t in trials) == \
        sorted((n, s) for n in top2 for s in (0, 1))
    for t in trials:  # the source trial's architecture and training, exactly as the search drew them
        original = source.trials[t.user_attrs["source_trial"]]
        assert t.params == original.params and t.user_attrs["arch"] == original.user_attrs["arch"]
        assert t.user_attrs["hparams"] == original.user_attrs["hparams"]

    rows = result["rows"]
    assert sorted(row["source_trial"] for row in rows) == sorted(top2) and [row["rank"] for row in rows] == [1, 2]
    for row in rows:
        assert row["n"] == 2 and sorted(t["seed"] for t in row["trials"]) == [0, 1]
        assert row["mean"] == pytest.approx(sum(row["accuracies"]) / 2)
        assert row["std"] == pytest.approx(abs(row["accuracies"][0] - row["accuracies"][1]) / 2 ** 0.5)
        assert row["search_value"] == source.trials[row["source_trial"]].value
        assert row["search_rank"] == top2.index(row["source_trial"]) + 1
    assert rows[0]["mean"] >= rows[1]["mean"] and result["winner"] == rows[0]["source_trial"]

    lines = table.strip().splitlines()
    assert lines[-1] == f"wrote {result['html']}" and result["html"].endswith(f"{SOURCE}-rerank/rerank.html")
    assert any(line.split()[:3] == ["1", "trial", str(result["winner"])] and "±" in line for line in lines)
    assert any(line.startswith(f"re-ranked winner: trial {result['winner']}") for line in lines)
    page = (tmp_path / "runs" / f"{SOURCE}-rerank" / "rerank.html").read_text()
    assert f"Rerank: {SOURCE}" in page and "error_y" in page and "search: one score" in page

    again, _ = _rerank(tmp_path, capsys)
    assert again["trained_now"] == 0 and again["rows"] == rows and len(study.get_trials()) == 4
    # Another fidelity would not compare with the trials there: refused in one line, nothing written.
    args = ["rerank", "--study", SOURCE, "--top", "2", "--epochs", "2", "--train-images", "256", "--data-dir",
            str(tmp_path / "data"), "--storage", storage, "--runs-dir", str(tmp_path / "runs"), "--no-progress"]
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "holds a rerank with epochs 1, not 2" in err and len(study.get_trials()) == 4

    out = _export(tmp_path, capsys)
    assert f"trial {result['winner']} " in out and f"chosen by rerank: {rows[0]['mean']:.2%}" in out
    # Force the other architecture ahead by hand: export follows the rerank study's values, not the search's.
    other = rows[1]
    study.add_trial(create_trial(value=1.0, params={}, distributions={},
                                 user_attrs={"source_trial": other["source_trial"], "seed": 2,
                                             "params": other["params"]}))
    assert rerank_winner(open_storage(storage), SOURCE)["source_trial"] == other["source_trial"]
    out = _export(tmp_path, capsys, "--json")
    exported = json.loads(out.strip().splitlines()[-1])
    assert (exported["trial"], exported["chosen_by"], exported["rerank"]["n"]) == (other["source_trial"], "rerank", 3)
    out = _export(tmp_path, capsys, "--json", "--trial", str(result["winner"]))  # --trial still decides
    assert json.loads(out.strip().splitlines()[-1])["trial"] == result["winner"]


def _trial(value: float, source: int, seed: int, params: int, state: TrialState = TrialState.COMPLETE,
           **attrs) -> optuna.trial.FrozenTrial:
    return create_trial(value=value if state == TrialState.COMPLETE else None, state=state,
                        params={"x": 0.5}, distributions={"x": FloatDistribution(0, 1)},
                        user_attrs={"source_trial": source, "seed": seed, "params": params, **attrs})


def test_the_rerank_order_is_the_best_mean_then_fewer_parameters_then_the_earlier_trial(tmp_path):
    trials = [
        _trial(0.90, 7, 0, 5000), _trial(0.96, 7, 1, 5000),   # 7: mean 0.93 (one lucky seed)
        _trial(0.92, 3, 0, 9000), _trial(0.94, 3, 1, 9000),   # 3: mean 0.93, more parameters than 7
        _trial(0.93, 5, 0, 5000), _trial(0.93, 5, 1, 5000),   # 5: mean 0.93, as few as 7, an earlier trial
        _trial(0.99, 1, 0, 1000),  # a diverged seed (told PRUNED) counts at chance, not at its last score
        _trial(0.0, 1, 1, 1000, state=TrialState.PRUNED, reason="diverged", chance=0.10),
        _trial(0.0, 9, 0, 100, state=TrialState.FAIL),       # a failed training is no score
    ]
    rows = reranked(trials)
    assert [(r["source_trial"], r["rank"], r["n"]) for r in rows] == [(5, 1, 2), (7, 2, 2), (3, 3, 2), (1, 4, 2)]
    assert rows[0]["std"] == 0.0 and rows[1]["std"] == pytest.approx(0.0424264, abs=1e-6)
    assert rows[3]["diverged"] == 1 and rows[3]["mean"] == pytest.approx(0.545)

    # The linked study in a storage: its winner, whatever the search's own order; a study that merely has the name
    # (no source_study recorded) is not a rerank.
    storage = open_storage(f"sqlite:///{tmp_path}/s.db")
    linked = optuna.create_study(study_name="s-rerank", storage=storage, direction="maximize")
    assert rerank_winner(storage, "s") is None
    linked.set_user_attr("source_study", "s")
    assert rerank_winner(storage, "s") is None  # no trained trial yet
    linked.add_trials(trials)
    winner = rerank_winner(storage, "s")
    assert (winner["source_trial"], winner["study"], winner["n"]) == (5, "s-rerank", 2)
    assert rerank_winner(storage, "t") is None


@pytest.mark.parametrize("extra, message", [
    (["--study", "nope"], "no study named 'nope' in this storage"),
    (["--top", "0"], "--top must be an integer of at least 1, but got 0"),
    (["--seeds", "0"], "--seeds must be an integer of at least 1, but got 0"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, extra, message):
    optuna.create_study(study_name=SOURCE, storage=f"sqlite:///{tmp_path}/studies.db")
    args = ["rerank", "--storage", f"sqlite:///{tmp_path}/studies.db", "--runs-dir", str(tmp_path / "runs"), *extra]
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err


def test_pareto_takes_the_front_of_parameters_and_accuracy_best_first():
    from tpsearch.study._outcome import ranked
    from tpsearch.planned._rerank import RerankOptions, _candidates

    trials = [create_trial(value=v, params={}, distributions={}, user_attrs={"params": p})
              for v, p in ((0.93, 8000), (0.95, 9000), (0.90, 1000), (0.94, 5000))]
    order = ranked(trials)
    front = _candidates(order, RerankOptions(pareto=True))
    assert [(t.value, t.user_attrs["params"]) for t in front] == [(0.95, 9000), (0.94, 5000), (0.90, 1000)]
    assert len(_candidates(order, RerankOptions(pareto=True, top=2))) == 2
    assert [t.value for t in _candidates(order, RerankOptions(top=3))] == [0.95, 0.94, 0.93]
    # A study searched with --objectives accuracy,macs: its own front, over MACs, not parameters.
    multi = [create_trial(values=[v, m], params={}, distributions={}, user_attrs={"params": 1, "macs": m})
             for v, m in ((0.93, 800), (0.95, 900), (0.90, 100), (0.94, 950))]
    front = _candidates(ranked(multi), RerankOptions(pareto=True), ["accuracy", "macs"])
    assert [(t.values[0], t.values[1]) for t in front] == [(0.95, 900), (0.93, 800), (0.90, 100)]
