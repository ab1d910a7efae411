"""Regenerate ``spectral_indices.json`` from the ASI v0 data files bundled with spyndex.

Run by hand from the repository root when spyndex's data change, and commit the output
(``territoire_geo/data/spectral_indices.json``; the script is not shipped)::

    pip install spyndex && python scripts/build_indices.py

It reads spyndex's *data* files only (``spectral-indices-dict.json``,
``constants.json``, ``bands.json``); spyndex itself is never imported or called.
It keeps the indices whose bands all exist on Sentinel-2 (or Landsat 8/9) and
whose constants all have a default, renames the ASI band letters to the
canonical band names of territoire_geo, checks every formula with the safe
evaluator, adds the few first-class indices ASI lacks, and checks the
first-class formulas against their standard published form.
"""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import json
from pathlib import Path
from typing import Any

from territoire_geo.analysis.expr import parse
from territoire_geo.errors import ExpressionError

OUTPUT = Path(__file__).resolve().parents[1] / "territoire_geo" / "data" / "spectral_indices.json"
ATTRIBUTION = "Awesome Spectral Indices, Montero et al. 2023, Sci. Data 10:197, MIT licence"

#: ASI band letter -> canonical band name (ASI ``S2`` is SWIR2, not Sentinel-2).
BANDS = {
    "A": "coastal", "B": "blue", "G": "green", "R": "red", "RE1": "rededge1", "RE2": "rededge2",
    "RE3": "rededge3", "N": "nir", "N2": "nir08", "WV": "nir09", "S1": "swir16", "S2": "swir22",
}

#: Constants whose table default is not usable as a default.
UNUSABLE_CONSTANTS = {
    "n": "constant n is scene-dependent (median ratio computed from the image); the table value is a placeholder",
}

#: Per-index constant defaults that differ from the ASI v0 constants table (v0 has no per-index defaults).
OVERRIDES: dict[str, dict[str, Any]] = {
    "SAVI": {
        "constants": {"L": 0.5},
        "note": "L = 0.5 as in Huete (1988); the ASI v0 constants table has a single L = 1.0 shared with EVI",
    },
}

#: First-class indices: expected canonical formula (checked by AST equality) and valid range.
FIRST_CLASS: dict[str, tuple[str, list[float]]] = {
    "NDVI": ("(nir - red) / (nir + red)", [-1.0, 1.0]),
    "EVI": ("g * (nir - red) / (nir + C1 * red - C2 * blue + L)", [-1.0, 1.0]),
    "SAVI": ("(1.0 + L) * (nir - red) / (nir + red + L)", [-1.0, 1.0]),
    "MSAVI": ("0.5 * (2.0 * nir + 1 - ((2 * nir + 1) ** 2 - 8 * (nir - red)) ** 0.5)", [-1.0, 1.0]),
    "NDWI": ("(green - nir) / (green + nir)", [-1.0, 1.0]),
    "MNDWI": ("(green - swir16) / (green + swir16)", [-1.0, 1.0]),
    "NDMI": ("(nir - swir16) / (nir + swir16)", [-1.0, 1.0]),
    "NBR": ("(nir - swir22) / (nir + swir22)", [-1.0, 1.0]),
    "NDBI": ("(swir16 - nir) / (swir16 + nir)", [-1.0, 1.0]),
    "BSI": ("(swir16 + red - (nir + blue)) / (swir16 + red + (nir + blue))", [-1.0, 1.0]),
    "NDRE": ("(nir - rededge1) / (nir + rededge1)", [-1.0, 1.0]),
    "GNDVI": ("(nir - green) / (nir + green)", [-1.0, 1.0]),
}

#: First-class indices missing from ASI v0 under these names, added by hand.
ADDED: dict[str, dict[str, Any]] = {
    "BSI": {
        "long_name": "Bare Soil Index",
        "formula": "((S1 + R) - (N + B))/((S1 + R) + (N + B))",
        "application_domain": "soil",
        "reference": "Rikimaru, Roy & Miyatake (2002), Tropical forest cover density mapping, Tropical Ecology "
        "43(1):39-47; http://citeseerx.ist.psu.edu/viewdoc/download?doi=10.1.1.465.8749&rep=rep1&type=pdf",
        "note": "same formula as ASI 'BI' (Bare Soil Index); BSI is the name most users know",
    },
    "NDRE": {
        "long_name": "Normalized Difference Red Edge",
        "formula": "(N - RE1) / (N + RE1)",
        "application_domain": "vegetation",
        "reference": "https://doi.org/10.1016/1011-1344(93)06963-4",
        "note": "same formula and reference as ASI 'NDREI'; NDRE is the name most users know. Uses red edge 1 "
        "(Sentinel-2 B5, 705 nm)",
    },
}


def _spyndex_data() -> Path:
    spec = importlib.util.find_spec("spyndex")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("spyndex is not installed: pip install spyndex (data files only are read)")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def translate(formula: str) -> str:
    """Rename ASI band letters to canonical names and normalise spacing."""
    tree = ast.parse(formula, mode="eval")
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id in BANDS:
            node.id = BANDS[node.id]
    return ast.unparse(tree)


def _names(formula: str) -> set[str]:
    return {node.id for node in ast.walk(ast.parse(formula, mode="eval")) if isinstance(node, ast.Name)}


def _is_sum(node: ast.AST) -> bool:
    """True for sums of bands with positive weights."""
    if isinstance(node, ast.Name):
        return node.id in BANDS.values()
    if isinstance(node, ast.Constant):
        return isinstance(node.value, int | float) and node.value > 0
    return isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Mult) and all(
        _is_sum(child) for child in (node.left, node.right)
    )


def normalized_difference(formula: str) -> bool:
    """True for ``(P - Q) / (P + Q)`` where P and Q are positive sums of bands: range [-1, 1]."""
    body = ast.parse(formula, mode="eval").body
    if not (isinstance(body, ast.BinOp) and isinstance(body.op, ast.Div)):
        return False
    top, bottom = body.left, body.right
    if not (isinstance(top, ast.BinOp) and isinstance(top.op, ast.Sub)):
        return False
    if not (isinstance(bottom, ast.BinOp) and isinstance(bottom.op, ast.Add)):
        return False
    parts = {ast.dump(top.left), ast.dump(top.right)}
    return parts == {ast.dump(bottom.left), ast.dump(bottom.right)} and _is_sum(top.left) and _is_sum(top.right)


def _entry(name: str, raw: dict[str, Any], table: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    """Build one catalogue entry, or return the reason to exclude it."""
    names = _names(raw["formula"])
    unknown = sorted(n for n in names if n not in BANDS and n not in table)
    if unknown:
        return None, f"needs {', '.join(unknown)} (not a Sentinel-2/Landsat 8-9 reflectance band)"
    no_default = sorted(n for n in names if n in table and (table[n]["default"] is None or n in UNUSABLE_CONSTANTS))
    if no_default:
        reasons = [UNUSABLE_CONSTANTS.get(n, f"constant {n} has no default") for n in no_default]
        return None, "; ".join(reasons)
    constants = {n: float(table[n]["default"]) for n in sorted(names) if n in table}
    override = OVERRIDES.get(name, {})
    constants.update(override.get("constants", {}))
    formula = translate(raw["formula"])
    bands = [BANDS[n] for n in BANDS if n in names]
    try:
        parse(formula, variables=bands, constants=constants)
    except ExpressionError as exc:
        return None, f"refused by the safe evaluator: {exc}"
    expected, valid_range = FIRST_CLASS.get(name, (None, None))
    if expected is not None and ast.dump(ast.parse(expected, mode="eval")) != ast.dump(ast.parse(formula, mode="eval")):
        raise SystemExit(f"{name}: catalogue formula {formula!r} differs from the reviewed {expected!r}")
    if valid_range is None and normalized_difference(formula):
        valid_range = [-1.0, 1.0]
    entry = {
        "short_name": name,
        "long_name": raw["long_name"],
        "formula": formula,
        "asi_formula": raw["formula"],
        "bands": bands,
        "constants": constants,
        "reference": raw["reference"],
        "application_domain": raw["application_domain"],
        "platforms": raw.get("platforms", ["Sentinel-2", "Landsat-OLI"]),
        "valid_range": valid_range,
        "source": raw.get("source", "asi"),
        "first_class": name in FIRST_CLASS,
    }
    if "date_of_addition" in raw:
        entry["date_of_addition"] = raw["date_of_addition"]
    note = raw.get("note") or override.get("note")
    if note:
        entry["note"] = note
    return entry, None


def build() -> dict[str, Any]:
    """Return the catalogue as a JSON-ready dict."""
    data = _spyndex_data()
    asi = json.loads((data / "spectral-indices-dict.json").read_text(encoding="utf-8"))["SpectralIndices"]
    table = json.loads((data / "constants.json").read_text(encoding="utf-8"))
    version = importlib.metadata.version("spyndex")
    snapshot = max(raw["date_of_addition"] for raw in asi.values())
    sources = dict(asi)
    for name, extra in ADDED.items():
        if name in sources:
            raise SystemExit(f"{name} is now in ASI: remove it from ADDED")
        sources[name] = {**extra, "short_name": name, "source": "added",
                         "platforms": ["Sentinel-2", "Landsat-OLI"] if name != "NDRE" else ["Sentinel-2"]}
    indices: dict[str, Any] = {}
    excluded: dict[str, str] = {}
    for name in sorted(sources, key=str.lower):
        entry, reason = _entry(name, sources[name], table)
        if entry is None:
            excluded[name] = str(reason)
        else:
            indices[name] = entry
    missing = sorted(set(FIRST_CLASS) - set(indices))
    if missing:
        raise SystemExit(f"first-class indices missing: {missing}")
    used = sorted({c for entry in indices.values() for c in entry["constants"]})
    return {
        "catalog": {
            "name": "Awesome Spectral Indices",
            "schema": "v0",
            "version": f"ASI v0 via spyndex {version} (snapshot {snapshot})",
            "snapshot_date": snapshot,
            "source": f"spyndex {version} data files spectral-indices-dict.json, constants.json",
            "url": "https://github.com/awesome-spectral-indices/awesome-spectral-indices",
            "attribution": ATTRIBUTION,
            "licence": "MIT",
            "generated_by": "territoire_geo/data/_build_indices.py",
            "notes": [
                "Formulas use canonical band names; ASI letters: " + ", ".join(f"{k}={v}" for k, v in BANDS.items()),
                "Constants default to the ASI v0 constants table except where an index entry has a 'note'",
                "first_class formulas were checked against their standard published form; "
                "other formulas are as published by ASI",
                "valid_range is nominal for reflectances in [0, 1]; null when unknown",
            ],
        },
        "bands": BANDS,
        "constants": {c: {"default": float(table[c]["default"]), "description": table[c]["description"]} for c in used},
        "first_class": list(FIRST_CLASS),
        "indices": indices,
        "excluded": excluded,
    }


def main() -> None:
    """Write the catalogue next to this script."""
    catalogue = build()
    OUTPUT.write_text(json.dumps(catalogue, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {OUTPUT}: {len(catalogue['indices'])} indices, {len(catalogue['excluded'])} excluded")


if __name__ == "__main__":
    main()
