"""The deal model as the worker serves it, on a history whose signal is known: deals with the
account Acme are won, deals with Bust are lost. Training from month-start snapshots with a
month held out in time, explanations in words (occlusion against the typical deal), the
champion / challenger split."""

import numpy as np
import pytest

from tests.deal_history import CUT, history_events, month_start, train
from worker.backtest.replay import Replay
from worker.models.deal_explain import FACTOR_GROUPS, _ranked, effects, explain
from worker.models.deal_scoring import (
    DealModels,
    LoadedDealModel,
    score_open,
    served_by_challenger,
)
from worker.models.deal_training import DealTrainParams, NotEnoughDeals

GROUPS = list(FACTOR_GROUPS)


@pytest.fixture(scope="module")
def replay() -> Replay:
    return Replay(history_events())


@pytest.fixture(scope="module")
def trained(replay):
    return train(replay)


@pytest.fixture(scope="module")
def champion(trained) -> LoadedDealModel:
    return LoadedDealModel("deal-test-champion", trained.artifact)


def _open(replay: Replay, company: str) -> list:
    return [d for d in replay.open_at(CUT) if d.company == company]


def test_too_few_closes_keeps_the_heuristic(replay):
    with pytest.raises(NotEnoughDeals, match="heuristic stays in charge"):
        train(replay, DealTrainParams(min_won=10_000, min_lost=20))
    with pytest.raises(NotEnoughDeals):  # nothing closed before the cut
        train(replay, cut=month_start(1))


def test_training_window_and_figures_held_out_in_time(trained):
    assert trained.train_to == CUT
    # history starts at the month of the first close (Acme and Bust close 40 days in)
    assert trained.train_from == month_start(1)
    split = trained.metrics["split"]
    # the held-out snapshot is the last one with a month ended by the cut: 1 December
    assert split["test"]["snapshot"] == month_start(11).isoformat()
    assert 0 < split["test"]["closed"] <= split["test"]["deals"]
    test = trained.metrics["test"]
    assert test["cases"] == split["test"]["closed"]
    # the signal is in the account: a model fitted before December ranks December's deals
    # (Mid's deals, won half the time, cannot be told apart: 0.875 is the best AUC there is)
    assert test["auc"] > 0.85 and test["brier"] < test["base_rate_brier"]
    assert trained.samples["positive"] >= 20 and trained.samples["negative"] >= 20


def test_the_account_explains_the_close_probability(replay, champion):
    acme, bust = _open(replay, "Acme"), _open(replay, "Bust")
    scored = score_open(DealModels(champion), [*acme, *bust], [CUT] * (len(acme) + len(bust)))
    won, lost = scored[: len(acme)], scored[len(acme) :]
    assert min(s.probability for s in won) > 80 and max(s.probability for s in lost) < 20
    for s in won:
        assert s.explanation.raises[0].startswith("Won 100 % of "), s.explanation
        assert "earlier deals with this account (Acme)" in s.explanation.raises[0]
        assert s.explanation.raises[0].endswith("pts)")
    for s in lost:
        assert "Won 0 % of " in s.explanation.lowers[0], s.explanation
        assert "(Bust)" in s.explanation.lowers[0]
        assert s.version == "deal-test-champion" and s.challenger_probability is None


def test_a_group_at_the_reference_moves_nothing(replay, champion):
    model, profile = champion.model, champion.profile
    deals = _open(replay, "Acme")[:3]
    rows = model.rows_each(deals, [CUT] * len(deals))
    p, effect = effects(model, rows, len(deals), profile.reference)
    assert np.allclose(p, model.predict(deals, CUT).close_probability)
    # every deal here has the same qualification flags as the typical deal: no effect
    assert (effect[:, GROUPS.index("qualification")] == 0).all()
    # the account moves it, up for Acme
    assert (effect[:, GROUPS.index("company")] > 0.05).all()
    # the whole row at the reference: nothing to occlude, no effect at all
    typical = np.tile(np.concatenate([profile.reference, rows[0, len(profile.reference) :]]), 1)
    one = np.repeat(typical[None, :], model.months, axis=0)
    one[:, len(profile.reference) :] = rows[: model.months, len(profile.reference) :]
    _, none = effects(model, one, 1, profile.reference)
    assert (none == 0).all()


def test_a_rate_that_contradicts_the_effect_is_not_said(replay, champion):
    model, profile = champion.model, champion.profile
    deals = _open(replay, "Acme")[:1]
    rows = model.rows_each(deals, [CUT])
    effect = np.zeros((1, len(GROUPS)))
    effect[0, GROUPS.index("company")] = -0.2  # Acme wins 100 %: "lowers" would contradict
    effect[0, GROUPS.index("age")] = -0.1
    effect[0, GROUPS.index("competitors")] = 0.004  # a small effect, in tenths of a point
    effect[0, GROUPS.index("pushes")] = 0.0005  # under a tenth of a point: not said
    (said,) = explain(model, profile, deals, rows, effect)
    assert said.raises == ("No competitor in the deal (+0.4 pts)",)
    assert len(said.lowers) == 1 and said.lowers[0].startswith("Open ")
    assert said.lowers[0].endswith("(-10 pts)")


def test_ranked_sentences_say_the_share_of_deals_seen():
    quantiles = np.quantile(np.arange(1000.0), np.linspace(0, 1, 101))
    assert _ranked(quantiles, 800.5, "longer", "shorter") == "longer than 80 % of deals seen"
    assert _ranked(quantiles, 100.5, "longer", "shorter") == "shorter than 89 % of deals seen"
    assert _ranked(quantiles, 5000.0, "longer", "shorter") == "longer than every deal seen"


def test_the_split_is_stable_and_keeps_its_share():
    ids = [f"deal-{i}" for i in range(20_000)]
    share = [served_by_challenger(i, 0.3) for i in ids]
    assert abs(sum(share) / len(ids) - 0.3) < 0.02
    assert share == [served_by_challenger(i, 0.3) for i in ids]  # stable
    assert not any(served_by_challenger(i, 0.0) for i in ids[:500])
    assert all(served_by_challenger(i, 1.0) for i in ids[:500])
    # a larger share keeps every deal the smaller one gave the challenger
    assert all(served_by_challenger(i, 0.5) for i, s in zip(ids, share, strict=True) if s)


def test_the_challenger_is_scored_beside_and_serves_its_share(replay, champion, trained):
    challenger = LoadedDealModel("deal-test-challenger", trained.artifact)
    deals = _open(replay, "Acme") + _open(replay, "Bust")
    moments = [CUT] * len(deals)
    beside = score_open(DealModels(champion, challenger, 0.0), deals, moments)
    assert {s.version for s in beside} == {"deal-test-champion"}
    assert all(s.challenger_version == "deal-test-challenger" for s in beside)
    assert all(s.challenger_probability == s.champion_probability for s in beside)
    split = score_open(DealModels(champion, challenger, 0.5), deals, moments)
    served = [s.version == "deal-test-challenger" for s in split]
    assert served == [served_by_challenger(d.deal_id, 0.5) for d in deals]
    assert any(served) and not all(served)
    assert all(s.explanation.raises or s.explanation.lowers for s in split)
    assert score_open(DealModels(None, challenger, 1.0), deals, moments) == []
