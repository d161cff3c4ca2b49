"""A batch and a tick with a learned deal model in charge: the open deals touched get the
model's close probability as of their own moment (one call per batch), closed deals keep the
framework's 100 / 0, a failing model leaves the framework's probability in place."""

from dataclasses import replace

import pytest

from tests.deal_history import history_events, train
from tests.factories import T0, created, event
from worker.backtest.replay import Replay
from worker.domain.alerts import AlertTrack
from worker.domain.batch import Incoming, RecordRef
from worker.domain.clock import AgingDeal, age_deals, rescore_open
from worker.domain.deal_batch import apply_deal_batch, facts_of
from worker.engine import load_framework
from worker.models.deal_scoring import DealModels, LoadedDealModel, score_open
from worker.store.deals import deal_row

REF = RecordRef("t", 0, 0, None, None, ())


@pytest.fixture(scope="module")
def models() -> DealModels:
    trained = train(Replay(history_events()))
    return DealModels(LoadedDealModel("deal-v1", trained.artifact))


def _batch(models: DealModels | None):
    events = [
        created("A1", company="Acme", stage="qualification"),
        created("B1", company="Bust", stage="qualification", day=1),
        event("B1", "updated", {"amount": 2000}, day=3),
        created("W1", company="Acme"),
        event("W1", "closed_won", {}, day=2),
    ]
    return apply_deal_batch({}, set(), [Incoming(e, REF) for e in events], load_framework(), models)


def test_open_deals_get_the_models_probability_at_their_last_event(models):
    out = _batch(models)
    assert set(out.learned) == {"A1", "B1"}  # W1 is closed
    b1 = out.states["B1"]
    (alone,) = score_open(models, [b1], [b1.last_event_time])
    assert out.learned["B1"] == alone  # as of its own last event, not the batch's latest
    a1 = deal_row(out.states["A1"], out.scores["A1"], out.tracks["A1"], None, 0, out.learned["A1"])
    assert a1["close_probability"] == out.learned["A1"].probability > 80
    assert a1["prob_model_version"] == "deal-v1" and a1["challenger_version"] is None
    details = a1["score_details"]["probability"]
    assert details["key_factors"] == list(out.learned["A1"].explanation.key_factors)
    assert any("(Acme)" in f for f in details["key_factors"])
    heuristic = out.scores["A1"].probability.probability
    assert details["heuristic"]["probability"] == heuristic
    w1 = deal_row(out.states["W1"], out.scores["W1"], out.tracks["W1"], None, 0, None)
    assert w1["close_probability"] == 100 and w1["prob_model_version"] == "heuristic"


def test_without_a_model_the_framework_scores():
    out = _batch(None)
    assert out.learned == {}
    row = deal_row(out.states["A1"], out.scores["A1"], out.tracks["A1"])
    assert row["prob_model_version"] == "heuristic"
    assert row["close_probability"] == round(out.scores["A1"].probability.probability, 2)


def test_a_failing_model_leaves_the_framework_in_charge(models):
    broken = DealModels(
        LoadedDealModel("deal-broken", replace(models.champion.model, classifier=None))
    )
    out = _batch(broken)
    assert out.learned == {} and "AttributeError" in (out.model_error or "")
    assert set(out.states) == {"A1", "B1", "W1"}  # the events are applied all the same


def _aging(out, deal_id: str) -> AgingDeal:
    s = out.states[deal_id]
    return AgingDeal(
        s.deal_id,
        s.name,
        s.company,
        s.owner,
        s.amount,
        s.currency,
        s.stage,
        facts_of(s),
        AlertTrack(),
    )


def test_a_tick_and_a_rescoring_score_every_deal_at_their_instant(models):
    from schemas.clock import make_tick

    out = _batch(None)
    deals = [_aging(out, "A1"), _aging(out, "B1")]
    at = T0.replace(day=20)
    tick = Incoming(make_tick(at, "t", 0), REF)
    aged = age_deals(deals, tick, load_framework(), models)
    want = score_open(models, [out.states["A1"], out.states["B1"]], [at, at])
    assert [aged.learned["A1"], aged.learned["B1"]] == want
    again = rescore_open(deals, at, load_framework(), models)
    assert again.learned == aged.learned and again.alerts == []


def test_a_framework_rescoring_keeps_the_models_probability(models):
    from worker.domain.deal_batch import StoredDeal, rescore

    out = _batch(None)
    stored = [StoredDeal(s, AlertTrack()) for s in out.states.values()]
    again = rescore(stored, load_framework(), models)
    assert set(again.learned) == {"A1", "B1"}  # W1 is closed: 100, the framework's
    a1 = out.states["A1"]
    assert again.learned["A1"] == score_open(models, [a1], [a1.last_event_time])[0]
    assert rescore(stored, load_framework()).learned == {}
