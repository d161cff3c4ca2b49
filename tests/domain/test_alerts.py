from hypothesis import given
from hypothesis import strategies as st

from schemas.deal_events import DealStage
from tests.engine._determinism import here, in_another_process
from worker.domain.alerts import AlertRules, AlertTrack, alert_id, evaluate

RULES = AlertRules(value_threshold=5000, drop_points=15)


def step(
    track, category="healthy", probability=50.0, value=10_000, stage=DealStage.proposal, score=70
):
    return evaluate(
        track,
        RULES,
        stage=stage,
        value=value,
        currency="USD",
        health_score=score,
        health_category=category,
        probability=probability,
    )


def run(*steps):
    track, kinds = AlertTrack(), []
    for kwargs in steps:
        track, change = step(track, **kwargs)
        kinds.append(change.kind if change else None)
    return track, kinds


def test_healthy_warning_critical_won_alerts_each_transition_once():
    track, kinds = run(
        {"category": "healthy"},
        {"category": "warning"},
        {"category": "warning"},  # nothing changed: no alert
        {"category": "critical"},
        {"category": "critical"},
        {"category": "healthy", "stage": DealStage.closed_won, "probability": 100},
    )
    assert kinds == [None, "at_risk", None, "escalated", None, "resolved"]
    assert track.level == "none"


def test_small_deals_never_alert():
    _, kinds = run({"category": "critical", "value": 4999}, {"category": "critical", "value": 0})
    assert kinds == [None, None]


def test_value_rising_past_threshold_raises_and_falling_resolves():
    _, kinds = run(
        {"category": "warning", "value": 1000},
        {"category": "warning", "value": 5000},
        {"category": "warning", "value": 1000},
    )
    assert kinds == [None, "at_risk", "resolved"]


def test_probability_drop_alerts_with_hysteresis():
    track, kinds = run(
        {"probability": 40},
        {"probability": 60},  # new peak: the reference
        {"probability": 46},  # 14 points below: not yet
        {"probability": 45},  # 15 below: at risk
        {"probability": 47},  # back above the entry line: still raised, no flapping
        {"probability": 52},  # 8 below: still more than half the drop
        {"probability": 53},  # recovered to within 7.5 points of 60
    )
    assert kinds == [None, None, None, "at_risk", None, None, "resolved"]
    assert track.ref_probability == 53  # tracking restarts from the recovery


def test_critical_to_warning_stays_critical_silently():
    # an escalation is told once per episode: critical -> warning -> critical raises nothing
    track, kinds = run({"category": "critical"}, {"category": "warning"}, {"category": "critical"})
    assert kinds == ["at_risk", None, None] and track.level == "critical"
    track, kinds = run({"category": "warning"}, {"category": "critical"}, {"category": "warning"})
    assert kinds == ["at_risk", "escalated", None] and track.level == "critical"


def test_a_health_alert_resolves_only_when_health_is_back_at_the_line():
    rules = AlertRules(value_threshold=5000, drop_points=15, health_resolved_min=85)
    track, kinds = AlertTrack(), []
    for category, score in (("warning", 65), ("healthy", 72), ("warning", 68), ("healthy", 84),
                            ("healthy", 85)):  # fmt: skip
        track, change = evaluate(
            track,
            rules,
            stage=DealStage.proposal,
            value=10_000,
            currency="USD",
            health_score=score,
            health_category=category,
            probability=50.0,
        )
        kinds.append(change.kind if change else None)
    assert kinds == ["at_risk", None, None, None, "resolved"]
    assert track.level == "none"


def test_alert_carries_previous_state_and_reasons():
    track, _ = step(AlertTrack(), category="healthy", probability=55, score=80)
    _, change = step(track, category="critical", probability=30, score=25)
    assert change.kind == "at_risk" and change.level == "critical"
    assert change.previous.health_category == "healthy" and change.previous.health_score == 80
    assert any("critical" in r for r in change.reasons)
    assert any("fell 25 points" in r for r in change.reasons)


def alert_ids():
    """A sample of ids (for the cross-process comparison: module-level, no arguments)."""
    return [
        alert_id(f"D{d}", f"e{e}", kind)
        for d in range(4)
        for e in range(4)
        for kind in ("at_risk", "escalated", "resolved")
    ]


def test_alert_ids_are_stable_and_distinct():
    # stable across processes and releases: a replayed event finds the alert it raised before
    assert alert_id("D1", "e1", "at_risk") == "eb98ce3b-4be4-5e0d-a042-199af0e7601a"
    assert alert_id("D2", "e7", "resolved") == "25ab44eb-97c2-5471-b0a0-04604c2674ba"
    assert in_another_process(alert_ids) == here(alert_ids)  # another hash seed
    assert (
        len(
            {
                alert_id("D1", "e1", "at_risk"),
                alert_id("D1", "e2", "at_risk"),
                alert_id("D1", "e1", "resolved"),
                alert_id("D2", "e1", "at_risk"),
            }
        )
        == 4
    )


categories = st.sampled_from(["healthy", "warning", "critical"])


@given(
    st.lists(st.tuples(categories, st.floats(1, 99), st.sampled_from([100, 10_000])), max_size=30)
)
def test_alerts_alternate_between_raised_and_resolved(steps):
    """Whatever the sequence: a resolve only follows a raise, and raises never repeat
    without a resolve in between (escalations happen only while raised)."""
    track, raised = AlertTrack(), False
    for category, probability, value in steps:
        track, change = step(track, category=category, probability=probability, value=value)
        if change is None:
            continue
        if change.kind == "at_risk":
            assert not raised
            raised = True
        elif change.kind == "escalated":
            assert raised and track.level == "critical"
        else:
            assert raised
            raised = False
        assert (track.level != "none") == raised
