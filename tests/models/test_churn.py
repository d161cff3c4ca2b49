"""The churn model on the public bank churn sample, loaded through account events and the
domain's merge (not around them): time-held-out figures against a plain logistic regression,
calibration, explanations in words, the heuristic fallback, the artifact's round trip."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from worker.domain.account import (
    AccountOutcome,
    AccountState,
    apply_account_event,
    score_account,
    score_accounts,
)
from worker.engine import default_framework
from worker.models.churn import (
    SHORTCUT_ROWS,
    LoadedChurnModel,
    NotEnoughData,
    Trained,
    TrainingRow,
    TrainParams,
    score_rows,
    train,
)
from worker.models.churn_features import FeatureSpec
from worker.models.registry import new_version
from worker.testdata.bank_churn import events

FW = default_framework()
SENTENCE = re.compile(r"^.+: churned (\d+) % vs (\d+) % for the others$")


def fold_bank(directory: Path, limit: int | None = None):
    """States and outcomes of the sample's customers, merged event by event."""
    states: dict[str, AccountState] = {}
    outcomes: list[AccountOutcome] = []
    for e in events(directory, limit):
        before = states.get(e.subject)
        after = apply_account_event(before, e)
        assert after is not None
        if after.outcome is not None and e.type.endswith(("churned", "renewed")):
            outcomes.append(AccountOutcome(e.subject, e.id, after.outcome, e.time, before))
        states[e.subject] = after
    return states, outcomes


def rows_of(outcomes: list[AccountOutcome]) -> list[TrainingRow]:
    return [TrainingRow(o.features(), o.churned, o.occurred_at) for o in outcomes]


@pytest.fixture(scope="module")
def bank(bank_churn_data: Path):
    return fold_bank(bank_churn_data)


@pytest.fixture(scope="module")
def trained(bank) -> Trained:
    return train(rows_of(bank[1]))


def test_the_sample_arrives_as_events_with_attributes_and_outcomes(bank):
    states, outcomes = bank
    assert len(states) == len(outcomes) == 10_000
    assert sum(o.churned for o in outcomes) == 2_037
    some = next(iter(states.values()))
    assert set(some.attributes) >= {"age", "region", "products", "balance", "tenure_years"}
    assert some.usage_history and some.outcome in ("churned", "renewed")
    # the training row is the account before its outcome
    assert all(o.before.outcome is None for o in outcomes)


def test_held_out_in_time_it_beats_the_plain_logistic_regression(trained: Trained):
    m = trained.metrics
    split = m["split"]
    assert split["fit"]["to"] < split["calibration"]["from"] <= split["calibration"]["to"]
    assert split["calibration"]["to"] < split["test"]["from"]
    assert (split["fit"]["rows"], split["calibration"]["rows"], split["test"]["rows"]) == (
        6000,
        2000,
        2000,
    )
    model, base = m["test"], m["baseline_logistic"]
    assert model["cases"] == base["cases"] == 2000
    assert model["auc"] > base["auc"] + 0.05
    assert model["brier"] < base["brier"] < model["base_rate_brier"]
    assert model["log_loss"] < base["log_loss"]
    assert model["calibration_error"] <= 0.05
    assert set(m["candidates"]) == {
        "boosted_trees+isotonic",
        "boosted_trees+sigmoid",
        "logistic+isotonic",
        "logistic+sigmoid",
    }
    assert trained.samples == {"rows": 10_000, "positive": 2_037, "negative": 7_963}
    assert trained.train_from < trained.train_to


def test_explanations_say_the_datas_rates_in_the_models_direction(bank, trained: Trained):
    states, _ = bank
    sample = list(states.values())[:300]
    rows = [s for s in sample]
    from worker.domain.account import churn_features

    scored = score_rows(trained.model, [churn_features(s, s.last_event_time) for s in rows])
    explained = 0
    for s in scored:
        assert 0 <= s.score <= 100 and s.score == int(s.probability * 100 + 0.5)
        assert len(s.explanation.raises) <= 3 and len(s.explanation.lowers) <= 3
        for text in s.explanation.raises:
            rate_in, rate_out = map(int, SENTENCE.match(text).groups())
            assert rate_in > rate_out, text
        for text in s.explanation.lowers:
            rate_in, rate_out = map(int, SENTENCE.match(text).groups())
            assert rate_in < rate_out, text
        explained += bool(s.explanation.raises or s.explanation.lowers)
    assert explained >= 0.9 * len(scored)
    # inactive members churn more in this data, and the model says so in words
    inactive = [
        sc
        for st, sc in zip(rows, scored, strict=True)
        if st.usage_history[-1].logins == 0 and sc.score >= 30
    ]
    assert inactive
    assert any("in the last period 0" in t for sc in inactive for t in sc.explanation.raises)


def test_the_champion_scores_accounts_and_names_its_version(bank, trained: Trained):
    states, _ = bank
    state = next(iter(states.values()))
    loaded = LoadedChurnModel("churn-test", trained.model)
    score = score_account(state, FW, churn_model=loaded)
    assert score.churn_model_version == "churn-test"
    assert score.learned is not None
    assert score.churn.score == int(score.learned.probability * 100 + 0.5)
    assert score.churn.drivers == score.learned.raises
    assert score.learned.heuristic_score == score_account(state, FW).churn.score
    # one account at a time or all in a batch: the same scores
    many = list(states.values())[:50]
    batch = score_accounts([(s, s.last_event_time) for s in many], FW, loaded)
    single = [score_account(s, FW, churn_model=loaded) for s in many]
    assert [b.churn.score for b in batch] == [s.churn.score for s in single]
    assert [b.churn.drivers for b in batch] == [s.churn.drivers for s in single]


def test_the_artifact_round_trips_through_the_registry(bank, trained: Trained):
    states, _ = bank
    from datetime import UTC, datetime

    from worker.domain.account import churn_features

    mv = new_version("churn", trained.model, trained_at=datetime(2026, 1, 1, tzinfo=UTC))
    rows = [churn_features(s, s.last_event_time) for s in list(states.values())[:100]]
    again = mv.load()
    x = trained.model.spec.matrix(rows)
    assert np.array_equal(again.probability(again.spec.matrix(rows)), trained.model.probability(x))


def test_too_few_outcomes_leave_the_heuristic_in_charge(bank):
    _, outcomes = bank
    few = rows_of(outcomes[:1000])  # about 200 churned: fewer than 200 in this slice
    churned = sum(r.churned for r in few)
    with pytest.raises(NotEnoughData, match="heuristic stays in charge") as caught:
        train(few, TrainParams(min_churned=churned + 1))
    assert (caught.value.churned, caught.value.renewed) == (churned, 1000 - churned)


def test_the_feature_spec_drops_constants_and_one_hots_strings():
    rows = [
        {"a": float(i), "same": 1.0, "never": None, "region": "FR" if i % 2 else "DE"}
        for i in range(40)
    ] + [{"a": None, "same": 1.0, "never": None, "region": "IT"}]
    spec = FeatureSpec.learn(rows, min_level_count=5)
    assert spec.numeric == ("a",)
    assert spec.categorical == {"region": ("DE", "FR")}
    x = spec.matrix([{"a": None, "region": "IT"}, {"a": 2.0, "region": "FR"}])
    assert np.isnan(x[0, 0]) and list(x[0, 1:]) == [0.0, 0.0]
    assert list(x[1]) == [2.0, 0.0, 1.0]


def test_the_trees_shortcut_gives_the_figures_of_predicting_every_occlusion(bank, trained: Trained):
    """score_rows' occlusions by the trees' shortcut (worker.models.tree_occlusion; a few rows:
    one stacked prediction, its base rows for the probabilities) against predicting every
    occluded row and then the rows alone: the same probabilities to the last bit and the same
    sentences, at the accounts' own moments and a year on."""
    from datetime import UTC, datetime

    from worker.domain.account import churn_features
    from worker.models.churn_explain import contributions

    states, outcomes = bank
    model = trained.model
    assert model.family == "boosted_trees" and model.forest() is not None  # the shortcut runs
    assert SHORTCUT_ROWS < 3000
    sample = [*list(states.values())[:1500], *[o.before for o in outcomes[-1500:]]]
    for at, some in (
        (None, sample),
        (datetime(2026, 3, 1, tzinfo=UTC), sample),
        (None, sample[:50]),
    ):
        rows = [churn_features(s, at or s.last_event_time) for s in some]
        fast = score_rows(model, rows)
        x = model.spec.matrix(rows)
        _, effect = contributions(model.raw_probability, model.spec, x, model.profile.reference)
        slow = model.probability(x)
        assert [f.probability for f in fast] == slow.tolist()
        assert [f.explanation for f in fast] == [
            model.profile.explain(model.spec, r, e) for r, e in zip(rows, effect, strict=True)
        ]
        assert sum(bool(f.explanation.raises) for f in fast) > len(rows) // 3


def test_a_logistic_champion_predicts_every_occlusion(bank):
    _, outcomes = bank
    logistic = train(rows_of(outcomes), TrainParams(families=("logistic",))).model
    assert logistic.forest() is None


def test_a_ticks_page_scores_each_account_as_alone(bank, trained: Trained):
    """A tick scores its page in one batch (one call of the model): the scores, reasons and
    alerts of each account alone."""
    from datetime import UTC, datetime

    from schemas.clock import make_tick
    from worker.domain.account_alerts import AccountTrack
    from worker.domain.account_batch import AccountBatchOutcome, StoredAccount, age_accounts
    from worker.domain.batch import Incoming, RecordRef

    states, _ = bank
    loaded = LoadedChurnModel("churn-test", trained.model)
    at = datetime(2026, 3, 1, tzinfo=UTC)
    tick = Incoming(make_tick(at, "t", 0, 86400), RecordRef("t", 0, 0, b"clock", None, ()))
    page = [StoredAccount(s, AccountTrack()) for s in list(states.values())[:400]]
    for model in (None, loaded):
        batch = age_accounts(page, tick, FW, model)
        alone = AccountBatchOutcome()
        for a in page:
            alone.rescore(a.state, a.track, tick, FW, at, model)
        assert batch.scores == alone.scores and batch.tracks == alone.tracks
        assert [a.model_dump() for a in batch.alerts] == [a.model_dump() for a in alone.alerts]
        assert batch.alerts and batch.aged == len(page)
