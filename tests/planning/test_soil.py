"""Soil, hazard and nature layers: synthetic frames with the real schemas → classes."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import box

from territoire_geo.errors import ConfigError, DataError, SchemaError, SchemaWarning
from territoire_geo.planning import soil


def polygons(n: int, x0: float = 700_000.0, y0: float = 6_600_000.0) -> list:
    return [box(x0 + 100 * i, y0, x0 + 100 * (i + 1), y0 + 100) for i in range(n)]


def frame(crs: object = 2154, **columns: list) -> gpd.GeoDataFrame:
    n = len(next(iter(columns.values())))
    return gpd.GeoDataFrame(columns, geometry=polygons(n), crs=crs)


def test_rga_georisques_shapefile_schema(tmp_path: Path) -> None:
    path = tmp_path / "AleaRG41_L93.shp"
    frame(NIVEAU=[1, 2, 3, 0], ALEA=["Faible", "Moyen", "Fort", "A priori nul"]).to_file(path)
    out = soil.read(path, "rga")
    assert out["SUITABILITY"].tolist() == [0.9, 0.6, 0.35, 1.0]
    assert out["CONSTRAINT"].tolist() == ["none", "penalty", "penalty", "none"]
    assert out["CLASSE"].iloc[2] == "exposition forte"
    assert out.crs.to_epsg() == 2154 and (out["SOIL_KIND"] == "rga").all()


@pytest.mark.parametrize("field", ["codeExposition", "code_expo", "ALEA", "niveau"])
def test_rga_field_aliases(field: str) -> None:
    values = ["2", "Moyenne", "forte", "1"] if field != "niveau" else [2.0, 2, 3, 1]
    out = soil.classify(frame(**{field: values}), "rga")
    assert out["CLASSE"].tolist()[0] == "exposition moyenne"
    assert out["SUITABILITY"].notna().all()


def test_ppr_covadis(tmp_path: Path) -> None:
    path = tmp_path / "N_ZONE_REG_PPRN_20100001_S_041.shp"
    frame(
        codezone=["R1", "B2", "Bg", "RF"], typereg=["03", 2, "01", "3"], soumisalea=["1", "1", "0", "1"]
    ).to_file(path)
    out = soil.read(path, "ppr_covadis")
    assert out["CONSTRAINT"].tolist() == ["exclusion", "penalty", "penalty", "exclusion"]
    assert out["SUITABILITY"].tolist() == [0.0, 0.4, 0.7, 0.0]
    assert out["CODEZONE"].tolist() == ["R1", "B2", "Bg", "RF"]
    assert out["SOIL_KEY"].tolist() == ["03", "02", "01", "03"]


def test_ppr_cnig_geopackage_picks_regulatory_layer(tmp_path: Path) -> None:
    path = tmp_path / "PPRN_41175_20120101.gpkg"
    frame(codezone=["p"]).to_file(path, layer="pprn_41175_perimetre_s")
    zones = frame(
        codezonereglement=["R", "B1", "V"],
        libellezonereglement=["Zone rouge", "Zone bleue", "Zone verte"],
        typereglement=["04", "02", "01"],
    )
    zones.to_file(path, layer="pprn_41175_zonereglementaireurba_s")
    out = soil.read(path, "ppr_cnig")
    assert out["CLASSE"].tolist() == ["zone d'interdiction stricte", "zone de prescriptions (bleue)",
                                      "prescriptions hors zone d'aléa"]  # fmt: skip
    assert out["LIBELLEZONEREGLEMENT"].tolist() == ["Zone rouge", "Zone bleue", "Zone verte"]


@pytest.mark.parametrize(
    ("kind", "columns", "constraint"),
    [
        (
            "znieff1",
            {"id_mnhn": ["240000123"], "nom": ["Étang de la Mée"], "url": ["https://inpn.mnhn.fr/x"]},
            "exclusion",
        ),
        ("znieff2", {"ID_MNHN": ["240030651"], "NOM": ["Vallée du Loir"]}, "penalty"),
        (
            "natura2000",
            {"sitecode": ["FR2400565"], "sitename": ["Vallée du Loir"], "url": ["u"]},
            "exclusion",
        ),
    ],
)
def test_nature_layers(kind: str, columns: dict, constraint: str) -> None:
    out = soil.read(frame(crs=2154, **columns), kind)
    assert out["CONSTRAINT"].tolist() == [constraint]
    assert 0 <= out["SUITABILITY"].iloc[0] < 1


def test_nature_layers_from_api_carto_wgs84() -> None:
    api = gpd.GeoDataFrame(
        {"id_mnhn": ["240000123"], "nom": ["x"], "url": ["u"]},
        geometry=[box(1.2, 47.9, 1.21, 47.91)],
        crs=4326,
    )
    out = soil.read(api, "znieff1")
    assert out.crs.to_epsg() == 2154 and 500_000 < out.total_bounds[0] < 600_000


def test_geology_bdcharm_latin1(tmp_path: Path) -> None:
    path = tmp_path / "GEO050K_HARM_041_S_FGEOL_2154.shp"
    geology = frame(
        CODE=["1", "2", "3", "4", "5"],
        NOTATION=["Fz", "e6", "j9b", "c4", "X"],
        DESCR=[
            "Alluvions récentes",
            "Argiles à silex",
            "Calcaire de Beauce",
            "Sables et grès",
            "Formation indéterminée",
        ],
        LITHOLOGIE=["alluvions", "argile, silex", "calcaire", "grès, sable", None],
    )
    geology.to_file(path, encoding="latin1")
    out = soil.read(path, "geology")
    assert out["DESCR"].tolist()[1] == "Argiles à silex"
    assert out["CONSTRAINT"].tolist() == ["penalty", "penalty", "none", "none", "none"]
    assert out["SUITABILITY"].tolist() == [0.5, 0.4, 0.75, 0.85, 0.6]
    assert out["CLASSE"].iloc[4] == "lithologie non classée"


def test_geology_descr_only() -> None:
    out = soil.classify(pd.DataFrame({"DESCR": ["Tourbe et vases", "Granite porphyroïde"]}), "geology")
    assert out["CONSTRAINT"].tolist() == ["exclusion", "none"]


def test_override_table_dataframe_and_csv(tmp_path: Path) -> None:
    table = pd.DataFrame(
        {
            "value": ["0|1", "2|3"],
            "CLASSE": ["ok", "ko"],
            "SUITABILITY": [1.0, 0.0],
            "CONSTRAINT": ["none", "exclusion"],
        }
    )
    out = soil.classify(frame(NIVEAU=[1, 3]), "rga", table=table)
    assert out["CLASSE"].tolist() == ["ok", "ko"] and out["SUITABILITY"].tolist() == [1.0, 0.0]
    path = tmp_path / "natura.csv"
    pd.DataFrame(
        {"value": ["*"], "CLASSE": ["N2000"], "SUITABILITY": [0.5], "CONSTRAINT": ["penalty"]}
    ).to_csv(path, index=False)
    out = soil.read(frame(sitecode=["FR1"]), "natura2000", table=path)
    assert out["CONSTRAINT"].tolist() == ["penalty"]


@pytest.mark.parametrize(
    ("table", "match"),
    [
        (pd.DataFrame({"value": ["1"], "CLASSE": ["x"]}), "lacks column"),
        (
            pd.DataFrame({"value": ["1"], "CLASSE": ["x"], "SUITABILITY": [2], "CONSTRAINT": ["none"]}),
            "between 0 and 1",
        ),
        (
            pd.DataFrame({"value": ["1"], "CLASSE": ["x"], "SUITABILITY": [0.5], "CONSTRAINT": ["maybe"]}),
            "maybe",
        ),
    ],
)
def test_invalid_tables(table: pd.DataFrame, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        soil.classify(frame(NIVEAU=[1]), "rga", table=table)


def test_unknown_kind_lists_kinds() -> None:
    with pytest.raises(
        ConfigError, match=r"rga, ppr_covadis, ppr_cnig, znieff1, znieff2, natura2000, geology, soilgrids"
    ):
        soil.classify(frame(NIVEAU=[1]), "clay")
    with pytest.raises(ConfigError, match="raster"):
        soil.read(frame(NIVEAU=[1]), "soilgrids")


def test_missing_field_names_aliases() -> None:
    with pytest.raises(SchemaError, match=r"'NIVEAU'.*codeExposition, code_expo"):
        soil.classify(frame(OTHER=[1]), "rga")
    with pytest.raises(SchemaError, match="sitecode"):
        soil.classify(frame(nom=["x"]), "natura2000")
    with pytest.raises(SchemaError, match="LITHOLOGIE"):
        soil.classify(frame(NOTATION=["Fz"]), "geology")


def test_unclassified_values_warn() -> None:
    with pytest.warns(SchemaWarning, match="not classified"):
        out = soil.classify(frame(typereg=["03", "09", None]), "ppr_covadis")
    assert out["CLASSE"].tolist()[1:] == ["non classé", "non classé"]
    assert out["SUITABILITY"].isna().tolist() == [False, True, True]


def test_no_crs_and_empty(tmp_path: Path) -> None:
    with pytest.warns(SchemaWarning, match="EPSG:2154 was assumed"):
        out = soil.read(frame(crs=None, NIVEAU=[1]), "rga")
    assert out.crs.to_epsg() == 2154
    lonlat = gpd.GeoDataFrame({"NIVEAU": [1]}, geometry=[box(2, 48, 2.1, 48.1)])
    with pytest.raises(DataError, match="source_crs"):
        soil.read(lonlat, "rga")
    assert soil.read(lonlat, "rga", source_crs=4326).crs.to_epsg() == 2154
    with pytest.raises(DataError, match="no features"):
        soil.read(frame(NIVEAU=[1]).iloc[:0], "rga")
    with pytest.raises(DataError, match="no such file"):
        soil.read(tmp_path / "missing.shp", "rga")


def test_z_and_invalid_geometry_repaired() -> None:
    bowtie = gpd.GeoSeries.from_wkt(
        [
            "POLYGON Z ((700000 6600000 1, 700100 6600100 1, 700100 6600000 1, 700000 6600100 1, 700000 6600000 1))"
        ]
    )
    layer = gpd.GeoDataFrame({"NIVEAU": [2]}, geometry=bowtie, crs=2154)
    out = soil.read(layer, "rga")
    assert out.is_valid.all() and not out.has_z.any()
    assert any("make_valid" in r for r in out.attrs["repairs"])


# -------------------------------------------------------------------- raster
def test_soilgrids_clay_scaled_integers() -> None:
    values = np.array([[100, 250, 400], [600, -32768, 0]], dtype="int16")  # g/kg
    result = soil.classify_raster_values(values, "clay")
    assert result.suitability.shape == values.shape and result.suitability.dtype == np.float32
    np.testing.assert_allclose(result.suitability, [[0.9, 0.7, 0.45], [0.3, np.nan, 0.9]])
    assert result.classe[1, 1] == "non classé" and result.class_index[1, 1] == -1
    assert result.constraint[1, 0] == "penalty"


@pytest.mark.parametrize(
    ("prop", "values", "expected"),
    [
        ("sand", [300, 900], [0.8, 0.5]),
        ("soc", [50, 1500], [0.9, 0.1]),
        ("phh2o", [40, 65, 90], [0.5, 0.9, 0.6]),
    ],
)
def test_soilgrids_properties(prop: str, values: list, expected: list) -> None:
    np.testing.assert_allclose(soil.classify_raster_values(np.array(values), prop).suitability, expected)


def test_soilgrids_physical_units_and_errors() -> None:
    result = soil.classify_raster_values(np.array([6.5, np.nan]), "phh2o", scaled=False, nodata=None)
    np.testing.assert_allclose(result.suitability, [0.9, np.nan])
    with pytest.raises(ConfigError, match="clay, sand, soc, phh2o"):
        soil.classify_raster_values(np.array([1]), "bdod")


def test_shipped_tables_are_valid() -> None:
    for kind in soil.KINDS:
        table = soil.load_table(kind)
        assert table["SUITABILITY"].between(0, 1).all()
    raster = soil.load_table("soilgrids")
    assert set(raster["property"]) == set(soil.RASTER_PROPERTIES)
