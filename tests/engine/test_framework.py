from __future__ import annotations

import copy
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from worker.engine import Framework, FrameworkError, FrameworkSpec, load_framework
from worker.engine.framework import deep_merge, default_framework, normalize_key


def packaged_data() -> dict[str, Any]:
    text = resources.files("worker.engine").joinpath("framework.toml").read_text("utf-8")
    return tomllib.loads(text)


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, path + "."))
        else:
            out[path] = value
    return out


def write_toml(path: Path, data: dict[str, Any]) -> Path:
    """A tiny TOML writer, enough for the framework's shapes."""
    lines: list[str] = []

    def emit(table: list[str], node: dict[str, Any]) -> None:
        scalars = {k: v for k, v in node.items() if not isinstance(v, dict)}
        children = {k: v for k, v in node.items() if isinstance(v, dict)}
        if table and (scalars or not children):
            lines.append("[" + ".".join(f'"{part}"' for part in table) + "]")
        lines.extend(f'"{k}" = {_toml_value(v)}' for k, v in scalars.items())
        for key, child in children.items():
            emit([*table, key], child)

    emit([], data)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return repr(value)


# --- loading --------------------------------------------------------------------------------


def test_packaged_framework_loads(fw: Framework) -> None:
    assert fw.version == packaged_data()["version"]
    assert fw.version
    assert set(fw.verticals) == set(packaged_data()["verticals"])
    assert default_framework() is default_framework()
    assert default_framework().version == fw.version


def test_alert_thresholds(fw: Framework) -> None:
    assert fw.alerts.value_threshold == 5000
    assert fw.alerts.probability_drop_points == 15


def test_user_file(tmp_path: Path) -> None:
    data = packaged_data()
    data["version"] = "custom-7"
    data["defaults"]["stages"]["proposal"]["base_rate"] = 33
    custom = load_framework(write_toml(tmp_path / "fw.toml", data))
    assert custom.version == "custom-7"
    assert custom.for_industry(None).params.stages.proposal.base_rate == 33


def test_every_field_is_documented() -> None:
    seen: set[type[BaseModel]] = set()

    def walk(model: type[BaseModel]) -> None:
        if model in seen:
            return
        seen.add(model)
        for name, info in model.model_fields.items():
            assert info.description, f"{model.__name__}.{name} has no description"
            for arg in _model_types(info.annotation):
                walk(arg)

    walk(FrameworkSpec)
    assert len(seen) > 20


def _model_types(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    out = []
    for arg in getattr(annotation, "__args__", ()):
        out.extend(_model_types(arg))
    return out


# --- validation -----------------------------------------------------------------------------


def _load_modified(tmp_path: Path, change: Any) -> Framework:
    data = packaged_data()
    change(data)
    return load_framework(write_toml(tmp_path / "fw.toml", data))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["defaults"]["health"]["weights"].update(velocity=0.5), "sum to 1"),
        (lambda d: d["defaults"]["health"]["qualification"].update(budget_points=31), "sum to 100"),
        (lambda d: d["defaults"]["stages"]["proposal"].update(norm_days=0), "norm_days"),
        (lambda d: d["defaults"]["stages"].pop("negotiation"), "negotiation"),
        (lambda d: d["defaults"]["probability"].update(min_open=99, max_open=1), "min_open"),
        (lambda d: d["defaults"]["health"].update(colour="red"), "colour"),
        (lambda d: d["alerts"].update(probability_drop_points=0), "probability_drop_points"),
        (lambda d: d["verticals"]["retail"].update(stages={"proposal": {"nrm_days": 3}}), "retail"),
        (
            lambda d: d["verticals"]["retail"].update(health={"weights": {"velocity": 0.9}}),
            "sum to 1",
        ),
        (lambda d: d["verticals"].update({"Retail": {}}), "same industry"),
    ],
)
def test_invalid_framework_is_rejected(tmp_path: Path, change: Any, message: str) -> None:
    with pytest.raises(FrameworkError, match=message):
        _load_modified(tmp_path, change)


def test_unreadable_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(FrameworkError, match="cannot read"):
        load_framework(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("version = \n", encoding="utf-8")
    with pytest.raises(FrameworkError, match="not valid TOML"):
        load_framework(bad)


# --- industries -----------------------------------------------------------------------------


def test_industry_matching_is_case_insensitive(fw: Framework) -> None:
    hc = fw.for_industry("healthcare")
    assert hc.vertical == "healthcare"
    assert fw.for_industry("HEALTHCARE") is hc
    assert fw.for_industry("  Healthcare ") is hc
    fs = fw.for_industry("Financial Services")
    assert fs.vertical == "financial_services"
    assert fw.for_industry("financial-services") is fs
    assert normalize_key("Financial - Services") == "financial_services"


def test_unknown_or_missing_industry_gets_defaults(fw: Framework) -> None:
    assert fw.for_industry(None) is fw.defaults
    assert fw.for_industry("underwater basket weaving") is fw.defaults
    assert fw.for_industry("") is fw.defaults
    assert fw.defaults.vertical is None
    assert fw.defaults.params == fw.spec.defaults


def test_for_industry_is_cached(fw: Framework) -> None:
    assert fw.for_industry("Technology") is fw.for_industry("Technology")


def test_deal_tables_follow_params(fw: Framework) -> None:
    for name in (None, *fw.verticals):
        resolved = fw.for_industry(name)
        p, t = resolved.params, resolved.deal
        assert resolved.version == fw.version
        for stage, table in t.stages.items():
            sp = p.stages.of(stage)
            assert table.norm_days == sp.norm_days
            assert table.base_rate == sp.base_rate
            assert table.zero_days == sp.norm_days * p.health.velocity.zero_at_norm_multiple
        assert t.w_engagement == p.health.weights.engagement
        assert t.p_competitor == p.probability.competitor_points


def _differences(a: dict[str, Any], b: dict[str, Any]) -> set[str]:
    fa, fb = flatten(a), flatten(b)
    return {k for k in fa.keys() | fb.keys() if fa.get(k) != fb.get(k)}


@pytest.mark.parametrize("vertical", sorted(packaged_data()["verticals"]))
def test_packaged_overrides_change_only_what_they_name(fw: Framework, vertical: str) -> None:
    overrides = flatten(fw.spec.verticals[vertical])
    resolved = fw.for_industry(vertical).params.model_dump(mode="json")
    defaults = fw.defaults.params.model_dump(mode="json")
    assert _differences(resolved, defaults) <= set(overrides)
    flat = flatten(resolved)
    for key, value in overrides.items():
        assert flat[key] == value


# Leaves that can take any value in a range without breaking a cross-field rule.
SAFE_LEAVES: dict[str, st.SearchStrategy[Any]] = {
    "stages.prospecting.norm_days": st.integers(1, 400),
    "stages.negotiation.base_rate": st.integers(0, 100),
    "stages.proposal.qualification_expected": st.booleans(),
    "health.velocity.stall_risk_norm_multiple": st.floats(1, 10),
    "health.engagement.inactive_risk_days": st.integers(0, 365),
    "health.engagement.target_interactions_per_week": st.floats(0.1, 50),
    "health.slippage.push_risk_min": st.integers(1, 20),
    "probability.competitor_points": st.floats(0, 20),
    "probability.confidence.min_interactions": st.integers(0, 50),
    "value.industry_factor": st.floats(0.1, 5),
    "value.plans.enterprise.list_price_per_user": st.floats(0, 1000),
    "churn.missing_data_risk": st.integers(0, 100),
    "churn.support.severity_points.high": st.integers(0, 100),
    "expansion.default_health": st.integers(0, 100),
    "expansion.tiers.starter.headroom": st.integers(0, 100),
}


@st.composite
def overrides(draw: st.DrawFn) -> dict[str, Any]:
    keys = draw(st.lists(st.sampled_from(sorted(SAFE_LEAVES)), unique=True, max_size=6))
    nested: dict[str, Any] = {}
    for key in keys:
        *path, leaf = key.split(".")
        node = nested
        for part in path:
            node = node.setdefault(part, {})
        node[leaf] = draw(SAFE_LEAVES[key])
    return nested


@settings(max_examples=60, deadline=None)
@given(override=overrides(), spelling=st.sampled_from(["Mining", "MINING", "mining "]))
def test_any_override_changes_only_what_it_names(override: dict[str, Any], spelling: str) -> None:
    data = packaged_data()
    data["verticals"] = {"mining": copy.deepcopy(override)}
    framework = Framework(FrameworkSpec.model_validate(data))
    resolved = framework.for_industry(spelling)
    assert resolved.vertical == "mining"
    got = resolved.params.model_dump(mode="json")
    defaults = framework.defaults.params.model_dump(mode="json")
    named = set(flatten(override))
    assert _differences(got, defaults) <= named
    flat = flatten(got)
    for key, value in flatten(override).items():
        assert flat[key] == pytest.approx(value)
    assert _differences(got, deep_merge(defaults, override)) == set()
