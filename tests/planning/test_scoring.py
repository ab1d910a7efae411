"""Scoring: transforms, weights, exclusions with reasons, reliability, sensitivity, properties."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from territoire_geo.errors import ConfigError
from territoire_geo.planning import scoring
from territoire_geo.planning.scoring import AllOf, AnyOf, Condition, Criterion, Exclusion, Transform


def units() -> pd.DataFrame:
    return pd.DataFrame({
        "unit_id": [1, 2, 3, 4, 5],
        "TYPEZONE": ["AUc", "U", "N", "A", "U"],
        "slope": [2.0, 10.0, 20.0, 0.0, np.nan],
        "ebc_share": [0.0, 0.0, 0.9, 0.1, 0.0],
        "rga_max": [1, 3, 2, 0, 1],
    })


ZONING = Criterion("zoning", "TYPEZONE", Transform.classes({"AUc": 1.0, "U": 0.5, "*": 0.0}), weight=2)
SLOPE = Criterion("slope", "slope", Transform.linear(0, 20), weight=1, direction="constraint")
CLAY = Criterion("clay", "rga_max", {"classes": {0: 0, 1: 0.2, 2: 0.6, 3: 1}}, weight=1, direction="constraint")
N_ZONE = Exclusion("zone_n", Condition("TYPEZONE", "==", "N"), "zone naturelle", "natural zone")
EBC = Exclusion("ebc", {"column": "ebc_share", "op": ">", "value": 0.5}, "espace boisé classé", "classified woodland")


# ---------------------------------------------------------------- transforms
def test_linear_thresholds_and_classes() -> None:
    values = pd.Series([-5.0, 0.0, 5.0, 20.0, 40.0, np.nan, np.inf])
    np.testing.assert_allclose(Transform.linear(0, 20).apply(values), [0, 0, 0.25, 1, 1, np.nan, 1])
    np.testing.assert_allclose(Transform.linear(20, 0).apply(values), [1, 1, 0.75, 0, 0, np.nan, 0])
    steps = Transform.thresholds([(0, 1.0), (5, 0.5), (15, 0.0)])
    np.testing.assert_allclose(steps.apply(values), [1.0, 1.0, 0.5, 0.0, 0.0, np.nan, 0.0])
    classes = Transform.classes({"3": 1.0, 1: 0.2, "*": 0.1})
    np.testing.assert_allclose(classes.apply(pd.Series([3, 3.0, "1", 7, None])), [1.0, 1.0, 0.2, 0.1, np.nan])
    assert np.isnan(Transform.classes({"AUc": 1}).apply(pd.Series(["N"]))[0])  # unknown class = no data
    assert Transform.parse({"linear": [0, 20]}) == Transform.linear(0, 20)
    assert steps.describe() == "thresholds ≥0:1, ≥5:0.5, ≥15:0"


@pytest.mark.parametrize("spec", [{"linear": [1, 1]}, {"linear": [0]}, {"thresholds": [[5, 1], [2, 0]]},
                                  {"classes": {"a": 1.5}}, {"cubic": [0, 1]}, {"classes": {}}, "linear"])
def test_bad_transforms(spec: object) -> None:
    with pytest.raises(ConfigError):
        Transform.parse(spec)


# ---------------------------------------------------------------- scores
def test_score_is_the_weighted_mean_of_utilities_and_contributions_add_up() -> None:
    out = scoring.score(units(), [ZONING, SLOPE, CLAY], [])
    # unit 1: zoning 1 (w 2), slope 1 - 0.1 = 0.9, clay 1 - 0.2 = 0.8 → (2 + 0.9 + 0.8) / 4
    assert out["score"].iloc[0] == pytest.approx(100 * 3.7 / 4)
    assert out["contrib_zoning"].iloc[0] == pytest.approx(50.0)
    contribs = out[["contrib_zoning", "contrib_slope", "contrib_clay"]].sum(axis=1)
    np.testing.assert_allclose(contribs, out["score"])
    assert out["rank"].tolist() == [1, 4, 5, 2, 3]  # 92.5, 37.5, 10, 50, 45


def test_missing_data_contributes_nothing_and_lowers_reliability() -> None:
    out = scoring.score(units(), [ZONING, SLOPE, CLAY], [])
    assert out["reliability"].tolist() == pytest.approx([1, 1, 1, 1, 0.75])
    assert out["contrib_slope"].iloc[4] == 0.0
    assert out["score_max_possible"].iloc[4] == pytest.approx(out["score"].iloc[4] + 25.0)
    absent = Criterion("ndvi", "ndvi_mean", Transform.linear(0, 1))
    out = scoring.score(units(), [ZONING, absent], [])
    assert out["reliability"].tolist() == pytest.approx([2 / 3] * 5)


def test_exclusions_give_the_first_reason_and_list_all_rules() -> None:
    out = scoring.score(units(), [ZONING, SLOPE], [EBC, N_ZONE])
    assert out["excluded"].tolist() == [False, False, True, False, False]
    assert out["exclusion"].iloc[2] == "espace boisé classé"
    assert out["exclusion_rules"].iloc[2] == "ebc;zone_n"
    assert pd.isna(out["rank"].iloc[2]) and out["rank"].notna().sum() == 4
    assert out["exclusion"].isna().sum() == 4
    english = scoring.score(units(), [ZONING], [N_ZONE, EBC], lang="en")
    assert english["exclusion"].iloc[2] == "natural zone"


def test_conditions_any_all_operators_and_missing_values() -> None:
    frame = units()
    assert Condition("TYPEZONE", "in", ["A", "N"]).evaluate(frame).tolist() == [False, False, True, True, False]
    assert Condition("TYPEZONE", "not in", ["U"]).evaluate(frame).tolist() == [True, False, True, True, False]
    assert Condition("slope", "!=", 10).evaluate(frame).tolist() == [True, False, True, True, False]  # NaN never hits
    assert Condition("slope", ">=", 10).evaluate(frame).tolist() == [False, True, True, False, False]
    assert Condition("rga_max", "==", "3").evaluate(frame).tolist() == [False, True, False, False, False]
    steep_u = AllOf([Condition("TYPEZONE", "==", "U"), Condition("slope", ">", 5)])
    assert steep_u.evaluate(frame).tolist() == [False, True, False, False, False]
    either = AnyOf([steep_u, {"column": "ebc_share", "op": ">", "value": 0.05}])
    assert either.evaluate(frame).tolist() == [False, True, True, True, False]
    nasty = Condition("TYPEZONE", "==", "__import__('os').system('echo pwned')")  # a value, never code
    assert not nasty.evaluate(frame).any()


def test_absent_exclusion_column_is_logged_not_applied(caplog: pytest.LogCaptureFixture) -> None:
    rule = Exclusion("paen", Condition("paen_share", ">", 0.5))
    with caplog.at_level(logging.WARNING, logger="territoire_geo.planning.scoring"):
        out = scoring.score(units(), [ZONING], [rule])
    assert "exclusion 'paen' not checked" in caplog.text and not out["excluded"].any()


def test_ties_share_the_best_rank() -> None:
    frame = pd.DataFrame({"TYPEZONE": ["U", "U", "AUc"]})
    assert scoring.score(frame, [ZONING])["rank"].tolist() == [2, 2, 1]


@pytest.mark.parametrize("weights", [[np.nan, 1], [-1, 2], [0, 0], [np.inf, 1]])
def test_bad_weights_raise_config_error(weights: list[float]) -> None:
    with pytest.raises(ConfigError, match="weight") as info:
        scoring.score(units(), [Criterion("a", "slope", Transform.linear(0, 1), weight=weights[0]),
                                Criterion("b", "slope", Transform.linear(0, 1), weight=weights[1])])
    assert "\n" not in str(info.value)


def test_bad_definitions() -> None:
    with pytest.raises(ConfigError, match="unique"):
        scoring.score(units(), [ZONING, ZONING])
    with pytest.raises(ConfigError, match="name"):
        Criterion("Bad Name", "x", Transform.linear(0, 1))
    with pytest.raises(ConfigError, match="direction"):
        Criterion("a", "x", Transform.linear(0, 1), direction="benefit")
    with pytest.raises(ConfigError, match="operator"):
        Condition("x", "=~", 1)
    with pytest.raises(ConfigError, match="list"):
        Condition("x", "in", "AUc")
    with pytest.raises(ConfigError, match="number"):
        Condition("x", ">", "high")
    with pytest.raises(ConfigError, match="no criterion"):
        scoring.score(units(), [])


# ---------------------------------------------------------------- criteria files
def test_default_criteria_set_loads() -> None:
    default = scoring.load_criteria()
    names = [c.name for c in default.criteria]
    assert names[0] == "zoning" and {"slope", "clay", "flood_red", "urban_distance", "vegetation"} <= set(names)
    assert [e.name for e in default.exclusions] == ["ppr_red", "ebc", "natura2000", "paen", "zone_n", "zone_a"]
    table = scoring.explain(default.criteria)
    assert table["weight_pct"].sum() == pytest.approx(100.0)


def test_criteria_file_errors(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("criteria:\n  - {name: a, column: x, transform: {linear: [0, 1]}, wieght: 2}\n")
    with pytest.raises(ConfigError, match="unknown key"):
        scoring.load_criteria(path)
    path.write_text("criteria: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        scoring.load_criteria(path)
    with pytest.raises(ConfigError, match="not found"):
        scoring.load_criteria(tmp_path / "missing.yaml")
    mine = scoring.load_criteria({"criteria": [{"name": "a", "column": "slope", "transform": {"linear": [0, 20]}}],
                                  "exclusions": [{"name": "n", "when": {"any": [{"column": "TYPEZONE", "op": "==",
                                                                                 "value": "N"}]}}]})
    assert scoring.score(units(), mine)["excluded"].sum() == 1


# ---------------------------------------------------------------- sensitivity
def test_sensitivity_rank_ranges_and_top_k_shares() -> None:
    frame = pd.DataFrame({"unit_id": range(1, 6), "a": [1.0, 0.9, 0.1, 0.5, 0.5], "b": [1.0, 0.2, 0.3, 0.45, 0.55],
                          "TYPEZONE": ["U", "U", "U", "U", "N"]})
    criteria = [Criterion("a", "a", Transform.linear(0, 1)), Criterion("b", "b", Transform.linear(0, 1))]
    out = scoring.sensitivity(frame, criteria, [N_ZONE], n=400, spread=0.5, top_k=1, seed=3)
    base = scoring.score(frame, criteria, [N_ZONE])
    assert out["rank"].tolist()[:4] == base["rank"].tolist()[:4]
    assert out.loc[0, ["rank_min", "rank_max", "top_k_share"]].tolist() == [1, 1, 1.0]  # dominates
    assert out.loc[2, ["rank_min", "rank_max"]].tolist() == [4, 4]  # dominated by everyone
    assert out.loc[1, "rank_min"] == 2 and out.loc[1, "rank_max"] == 3  # 2 and 4 swap with the weights
    assert (out["rank_min"] <= out["rank"].astype(float)).iloc[:4].all()
    assert np.isnan(out.loc[4, "rank_median"]) and out.loc[4, "top_k_share"] == 0.0
    again = scoring.sensitivity(frame, criteria, [N_ZONE], n=400, spread=0.5, top_k=1, seed=3)
    pd.testing.assert_frame_equal(out, again)
    still = scoring.sensitivity(frame, criteria, [N_ZONE], n=50, spread=0.0)
    assert (still["rank_min"] == still["rank_max"]).iloc[:4].all()


def test_sensitivity_arguments() -> None:
    with pytest.raises(ConfigError, match="n ≥ 1"):
        scoring.sensitivity(units(), [ZONING], n=0)


# ---------------------------------------------------------------- properties
finite_or_not = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.none(), st.sampled_from(["U", "x"]))


@settings(max_examples=150, deadline=None)
@given(
    weights=st.lists(st.floats(min_value=0, max_value=1e6, allow_nan=False), min_size=3, max_size=3),
    values=st.lists(st.tuples(finite_or_not, finite_or_not, finite_or_not), min_size=1, max_size=12),
    directions=st.lists(st.sampled_from(["advantage", "constraint"]), min_size=3, max_size=3),
)
def test_scores_stay_within_0_and_100(weights: list[float], values: list[tuple], directions: list[str]) -> None:
    frame = pd.DataFrame(values, columns=["a", "b", "c"], dtype=object)
    transforms = [Transform.linear(-1, 1), Transform.thresholds([(0, 0.2), (10, 1.0)]),
                  Transform.classes({"U": 1.0, "*": 0.3})]
    criteria = [Criterion(n, n, t, weight=w, direction=d)
                for n, t, w, d in zip("abc", transforms, weights, directions, strict=True)]
    if sum(weights) == 0:
        with pytest.raises(ConfigError):
            scoring.score(frame, criteria)
        return
    out = scoring.score(frame, criteria)
    assert out["score"].between(0, 100).all() and out["reliability"].between(0, 1).all()
    assert (out["score"] <= out["score_max_possible"] + 1e-9).all()
