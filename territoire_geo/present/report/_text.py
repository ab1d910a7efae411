"""Words and number/date formats of the HTML run report (French by default, English on request)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from territoire_geo.present._style import format_number

__all__ = [
    "CHANGE_NAMES",
    "ISSUE_NAMES",
    "TEXT",
    "format_date",
    "format_ha",
    "format_percent",
    "month_abbr",
]

TEXT: dict[str, dict[str, str]] = {
    "fr": {
        "kicker": "Rapport de suivi territorial", "default_title": "Rapport du run {name}",
        "territory": "Territoire", "insee": "commune(s) INSEE {codes}", "periods": "Comparaison {before} → {after}",
        "run_done": "Traitement terminé le {date}", "generated": "Rapport généré le {date} avec territoire_geo {version}",
        "contents": "Sommaire", "absent_tag": "absente", "absent": "Section absente",
        "scene_link": "Scène 3D interactive (fichier du même dossier que ce rapport) :",
        "key": "Chiffres clés", "key_new": "Nouvelles surfaces artificialisées (alertes)",
        "key_an": "dont en zones A et N", "key_alerts": "Alertes de changement", "key_units": "Unités notées",
        "key_zones": "Zones du PLU", "key_excluded": "Unités exclues",
        "scores": "Carte des scores des unités foncières",
        "contrib": "Contributions des critères aux unités les mieux classées",
        "change": "Alertes de changement", "zan": "Artificialisation (ZAN)",
        "ndvi": "Suivi de la végétation (NDVI)", "plu": "Validation du PLU",
        "prov": "Provenance et reproductibilité",
        "map_scores_title": "Score des unités foncières (0–100)", "excluded": "Unité exclue",
        "score_label": "Score (0–100, plus clair = plus favorable)",
        "scores_caption": "Chaque unité est colorée selon son score (0 à 100). Les unités hachurées en gris sont "
                          "exclues (motif dans le tableau). Les cinq premières sont numérotées par rang.",
        "top_table": "Unités les mieux classées", "sens_table": "Robustesse du classement (analyse de sensibilité)",
        "sens_caption": "Rangs obtenus en faisant varier les poids des critères : un écart min–max faible et une "
                        "part élevée dans le top signalent un classement robuste.",
        "excl_table": "Unités exclues, par motif", "col_units": "Unités",
        "contrib_title": "Contribution de chaque critère au score",
        "contrib_caption": "Chaque barre détaille le score d'une unité : la longueur de chaque segment est la part "
                           "apportée par un critère ; le nombre à droite est le score total.",
        "contrib_x": "Points de score", "other_criteria": "autres critères",
        "map_change_title": "Alertes de changement sur le zonage du PLU", "overview": "Vue d'ensemble",
        "zoom": "Zoom sur les alertes", "zone_types": "Zones du PLU\u00a0:", "classes": "Changements détectés\u00a0:",
        "change_caption": "Taches de changement détectées entre les deux périodes, sur les zones du PLU "
                          "(rouge U, orange AU, jaune A, vert N). Les numéros renvoient au tableau.",
        "alert_note": "Ce sont des alertes à vérifier, pas une mesure légale de l'artificialisation : un pixel "
                      "Sentinel-2 de 10 m couvre 100 m², au-dessus du seuil de 50 m² de l'OCS GE pour le bâti. "
                      "Vérifier chaque tache avec l'OCS GE, le cadastre ou une orthophoto.",
        "alerts_table": "Alertes détectées", "class_table": "Surface par classe de changement (toute l'emprise)",
        "zan_caption_csv": "Source : artificialisation.csv du run.",
        "zan_caption_alerts": "Estimation minimale calculée pour ce rapport à partir des alertes « nouvelle "
                              "surface artificialisée » (pixels de 10 m) croisées avec le zonage du PLU, faute de "
                              "fichier artificialisation.csv. Ce n'est pas la mesure officielle (OCS GE).",
        "zan_an": "En zones agricoles (A) et naturelles (N) : {ha}, soit {share} du total ({total}).",
        "zan_none": "Aucune nouvelle surface artificialisée détectée.",
        "au_table": "Zones à urbaniser : surface bâtie depuis l'approbation du PLU",
        "au_caption": "Surface des alertes datées après l'approbation du PLU, rapportée à la surface de la zone ; "
                      "l'état suit les seuils de part bâtie du traitement.",
        "col_approval": "Approbation", "col_built": "Bâti depuis", "col_built_share": "Part bâtie",
        "col_status": "État", "status_reserve": "en réserve", "status_partly_consumed": "en partie consommée",
        "status_consumed": "consommée",
        "no_alerts": "Aucune alerte de changement sur la période.",
        "ndvi_zones_title": "NDVI moyen par type de zone", "ndvi_zone_title": "NDVI moyen par zone",
        "ndvi_parcels_title": "NDVI moyen des parcelles RPG par groupe de cultures",
        "ndvi_caption": "Moyenne de l'indice de végétation (NDVI, de −1 à 1 ; plus haut = plus de végétation "
                        "verte) à chaque date d'image sans nuage. Fond gris : période « après », comparée à la "
                        "période « avant ».",
        "ndvi_parcels_caption": "Ligne : moyenne des parcelles du groupe ; bande : de la parcelle la plus basse "
                                "à la plus haute.",
        "ndvi_y": "NDVI moyen", "before": "avant", "after": "après",
        "plu_summary": "Norme CNIG {version} · {verdict}", "blocking": "erreurs bloquantes : fichier inutilisable "
                       "en l'état", "not_blocking": "aucune erreur bloquante",
        "plu_counts": "Zones par type", "plu_issues": "Contrôles", "plu_enc": "Encodage des fichiers",
        "overlaps": "Chevauchements", "gaps": "Trous dans le zonage", "repairs": "Réparations à la lecture",
        "in_layers": "{n} couche(s)", "pairs": "{n} paire(s) de zones, {area}", "holes": "{n} trou(s), {area}",
        "prov_recipe": "Recette", "prov_times": "Début / fin", "prov_inputs": "Données d'entrée",
        "prov_items": "Images satellite utilisées", "prov_soft": "Logiciels", "prov_outputs": "Fichiers produits",
        "prov_steps": "Étapes", "prov_warnings": "Avertissements du run", "cached": "(cache)",
        "prov_caption": "Les empreintes SHA-256 (abrégées ; survoler pour la valeur complète) permettent de "
                        "vérifier qu'un fichier n'a pas changé : territoire-geo recipe verify.",
        "source_s2": "Contient des données Copernicus Sentinel-2 modifiées ({years})",
        "source_plu": "PLU : Géoportail de l'Urbanisme", "source_tool": "traitement territoire_geo",
        "why_scores_recipe": "la recette « {name} » n'a pas d'étape de notation (scoring) : {file} n'existe pas "
                             "dans le dossier du run.",
        "why_file": "le fichier {file} n'existe pas dans le dossier du run.",
        "why_unreadable": "le fichier {file} est illisible ({error}).",
        "why_no_geometry": "seul scores.csv est présent : sans géométrie (unites_scores.gpkg), pas de carte.",
        "why_no_contrib": "le tableau des scores n'a aucune colonne contrib_<critère>.",
        "why_change_recipe": "la recette « {name} » n'a pas d'imagerie ni de détection de changement : {file} "
                             "n'existe pas.",
        "why_zan": "ni artificialisation.csv ni alertes_changement.gpkg + zonage.gpkg dans le dossier du run.",
        "why_ndvi": "ni ndvi_zones.csv ni ndvi_parcelles.csv dans le dossier du run (pas de suivi NDVI "
                    "par zone ou par parcelle dans cette recette).",
        "why_plu": "la recette n'a pas de PLU : validation_plu.json n'existe pas.",
        "why_failed": "la section n'a pas pu être construite ({error}).",
        "why_columns": "{file} n'a pas les colonnes attendues ({columns}).",
        "col_rank": "Rang", "col_unit": "Unité", "col_type": "Type de zone", "col_area": "Surface",
        "col_score": "Score", "col_rel": "Fiabilité", "col_reason": "Motif", "col_ranks": "Rang min – médian – max",
        "col_topk": "Part dans le top", "col_no": "N°", "col_class": "Nature", "col_zone": "Zone(s)",
        "col_first": "Première date", "col_ndvi": "NDVI avant → après", "col_commune": "Commune",
        "col_year": "Année", "col_period": "Période", "col_alerts": "Alertes", "col_share_an": "Part en A et N",
        "of_which": "dont {what}", "col_share": "Part du total", "col_n": "Nombre", "col_severity": "Gravité",
        "col_check": "Contrôle", "col_layer": "Couche", "col_message": "Détail", "col_declared": "Déclaré",
        "col_found": "Détecté", "col_fixed": "Valeurs réparées", "col_role": "Rôle", "col_path": "Fichier",
        "col_sha": "SHA-256", "col_size": "Taille", "col_id": "Identifiant", "col_date": "Date",
        "col_baseline": "Version de traitement", "col_scale": "Échelle", "col_offset": "Décalage",
        "col_collection": "Collection", "col_step": "Étape", "col_seconds": "Durée", "col_pixels": "Pixels",
        "total": "Total", "none": "aucun", "yes": "oui", "no": "non", "outside": "hors zonage",
        "more_rows": "… et {n} autre(s) ligne(s) (voir le fichier {file}).",
        "severity_error": "erreur", "severity_warning": "attention", "severity_info": "info",
    },
    "en": {
        "kicker": "Territory monitoring report", "default_title": "Report of run {name}",
        "territory": "Territory", "insee": "INSEE commune(s) {codes}", "periods": "Comparison {before} → {after}",
        "run_done": "Processing finished on {date}", "generated": "Report generated on {date} with territoire_geo {version}",
        "contents": "Contents", "absent_tag": "not available", "absent": "Section not available",
        "scene_link": "Interactive 3D scene (a file in the same folder as this report):",
        "key": "Key figures", "key_new": "New artificial surface (alerts)", "key_an": "of which in A and N zones",
        "key_alerts": "Change alerts", "key_units": "Scored units", "key_zones": "PLU zones",
        "key_excluded": "Excluded units",
        "scores": "Land-unit score map", "contrib": "Criterion contributions of the top-ranked units",
        "change": "Change alerts", "zan": "Land take (ZAN)", "ndvi": "Vegetation monitoring (NDVI)",
        "plu": "PLU validation", "prov": "Provenance and reproducibility",
        "map_scores_title": "Land-unit score (0–100)", "excluded": "Excluded unit",
        "score_label": "Score (0–100, lighter = more suitable)",
        "scores_caption": "Each unit is coloured by its score (0 to 100). Grey hatched units are excluded "
                          "(reason in the table). The first five are numbered by rank.",
        "top_table": "Top-ranked units", "sens_table": "Ranking robustness (sensitivity analysis)",
        "sens_caption": "Ranks obtained when the criterion weights vary: a narrow min–max range and a high "
                        "top-k share mean a robust ranking.",
        "excl_table": "Excluded units, by reason", "col_units": "Units",
        "contrib_title": "Contribution of each criterion to the score",
        "contrib_caption": "Each bar breaks a unit's score down: each segment is the part brought by one "
                           "criterion; the number on the right is the total score.",
        "contrib_x": "Score points", "other_criteria": "other criteria",
        "map_change_title": "Change alerts over the PLU zoning", "overview": "Overview", "zoom": "Zoom on the alerts",
        "zone_types": "PLU zones:", "classes": "Detected changes:",
        "change_caption": "Change patches detected between the two periods, over the PLU zones (red U, orange AU, "
                          "yellow A, green N). Numbers refer to the table.",
        "alert_note": "These are alerts to review, not a legal measure of land take: a 10 m Sentinel-2 pixel covers "
                      "100 m², above the 50 m² OCS GE building threshold. Check every patch against OCS GE, the "
                      "cadastre or an orthophoto.",
        "alerts_table": "Detected alerts", "class_table": "Area by change class (whole extent)",
        "zan_caption_csv": "Source: the run's artificialisation.csv.",
        "zan_caption_alerts": "Minimal estimate computed for this report from the 'new artificial surface' alerts "
                              "(10 m pixels) intersected with the PLU zoning, as the run has no "
                              "artificialisation.csv. This is not the official measure (OCS GE).",
        "zan_an": "In agricultural (A) and natural (N) zones: {ha}, i.e. {share} of the total ({total}).",
        "zan_none": "No new artificial surface detected.",
        "au_table": "Zones to be urbanised: area built since the PLU was approved",
        "au_caption": "Area of the alerts dated after the PLU approval, as a share of the zone; the status "
                      "follows the built-share thresholds of the processing.",
        "col_approval": "Approved", "col_built": "Built since", "col_built_share": "Built share",
        "col_status": "Status", "status_reserve": "in reserve", "status_partly_consumed": "partly consumed",
        "status_consumed": "consumed",
        "no_alerts": "No change alert over the period.",
        "ndvi_zones_title": "Mean NDVI by zone type", "ndvi_zone_title": "Mean NDVI by zone",
        "ndvi_parcels_title": "Mean NDVI of RPG parcels by crop group",
        "ndvi_caption": "Mean vegetation index (NDVI, −1 to 1; higher = more green vegetation) at each cloud-free "
                        "image date. Grey background: the 'after' period, compared with the 'before' period.",
        "ndvi_parcels_caption": "Line: mean of the group's parcels; band: from the lowest to the highest parcel.",
        "ndvi_y": "Mean NDVI", "before": "before", "after": "after",
        "plu_summary": "CNIG standard {version} · {verdict}", "blocking": "blocking errors: the file cannot be used "
                       "as is", "not_blocking": "no blocking error",
        "plu_counts": "Zones by type", "plu_issues": "Checks", "plu_enc": "File encodings",
        "overlaps": "Overlaps", "gaps": "Holes in the zoning", "repairs": "Repairs when reading",
        "in_layers": "{n} layer(s)", "pairs": "{n} zone pair(s), {area}", "holes": "{n} hole(s), {area}",
        "prov_recipe": "Recipe", "prov_times": "Start / end", "prov_inputs": "Input data",
        "prov_items": "Satellite images used", "prov_soft": "Software", "prov_outputs": "Files produced",
        "prov_steps": "Steps", "prov_warnings": "Run warnings", "cached": "(cache)",
        "prov_caption": "SHA-256 checksums (shortened; hover for the full value) show whether a file has changed: "
                        "territoire-geo recipe verify.",
        "source_s2": "Contains modified Copernicus Sentinel-2 data ({years})",
        "source_plu": "PLU: Géoportail de l'Urbanisme", "source_tool": "processed with territoire_geo",
        "why_scores_recipe": "recipe '{name}' has no scoring step: {file} does not exist in the run folder.",
        "why_file": "{file} does not exist in the run folder.",
        "why_unreadable": "{file} cannot be read ({error}).",
        "why_no_geometry": "only scores.csv exists: without geometry (unites_scores.gpkg) there is no map.",
        "why_no_contrib": "the score table has no contrib_<criterion> column.",
        "why_change_recipe": "recipe '{name}' has no imagery or change detection: {file} does not exist.",
        "why_zan": "neither artificialisation.csv nor alertes_changement.gpkg + zonage.gpkg in the run folder.",
        "why_ndvi": "neither ndvi_zones.csv nor ndvi_parcelles.csv in the run folder (no NDVI monitoring by zone "
                    "or parcel in this recipe).",
        "why_plu": "the recipe has no PLU: validation_plu.json does not exist.",
        "why_failed": "the section could not be built ({error}).",
        "why_columns": "{file} lacks the expected columns ({columns}).",
        "col_rank": "Rank", "col_unit": "Unit", "col_type": "Zone type", "col_area": "Area", "col_score": "Score",
        "col_rel": "Reliability", "col_reason": "Reason", "col_ranks": "Rank min – median – max",
        "col_topk": "Top-k share", "col_no": "No.", "col_class": "Kind", "col_zone": "Zone(s)",
        "col_first": "First date", "col_ndvi": "NDVI before → after", "col_commune": "Commune", "col_year": "Year",
        "col_period": "Period", "col_alerts": "Alerts", "col_share_an": "Share in A and N", "of_which": "of which {what}",
        "col_share": "Share of total", "col_n": "Count", "col_severity": "Severity", "col_check": "Check",
        "col_layer": "Layer", "col_message": "Detail", "col_declared": "Declared", "col_found": "Detected",
        "col_fixed": "Values repaired", "col_role": "Role", "col_path": "File", "col_sha": "SHA-256",
        "col_size": "Size", "col_id": "Identifier", "col_date": "Date", "col_baseline": "Processing baseline",
        "col_scale": "Scale", "col_offset": "Offset", "col_collection": "Collection", "col_step": "Step",
        "col_seconds": "Duration", "col_pixels": "Pixels",
        "total": "Total", "none": "none", "yes": "yes", "no": "no", "outside": "outside the zoning",
        "more_rows": "… and {n} more row(s) (see {file}).",
        "severity_error": "error", "severity_warning": "warning", "severity_info": "info",
    },
}

#: Names of the change classes of :data:`territoire_geo.analysis.change.CHANGE_CLASSES`.
CHANGE_NAMES: dict[str, dict[int, str]] = {
    "fr": {0: "stable", 1: "perte de végétation", 2: "gain de végétation", 3: "nouvelle surface artificialisée",
           4: "apparition d'eau", 5: "disparition d'eau", 255: "données insuffisantes"},
    "en": {0: "stable", 1: "vegetation loss", 2: "vegetation gain", 3: "new artificial surface",
           4: "water gain", 5: "water loss", 255: "insufficient data"},
}

#: Plain names of the zoning validation checks (codes of the validation report).
ISSUE_NAMES: dict[str, dict[str, str]] = {
    "fr": {"no_zones": "aucune zone", "missing_field": "champ manquant", "invalid_geometry": "géométrie invalide",
           "multipolygon": "multipolygone", "z_coordinates": "coordonnées Z", "overlap": "chevauchement",
           "gap": "trou", "unknown_code": "code inconnu", "missing_value": "valeur manquante",
           "missing_table": "table absente", "duplicate_doc_urba": "DOC_URBA en double",
           "idurba_mismatch": "IDURBA incohérent", "bad_date": "date incohérente",
           "encoding_repaired": "encodage réparé"},
    "en": {"no_zones": "no zone", "missing_field": "missing field", "invalid_geometry": "invalid geometry",
           "multipolygon": "multipolygon", "z_coordinates": "Z coordinates", "overlap": "overlap", "gap": "hole",
           "unknown_code": "unknown code", "missing_value": "missing value", "missing_table": "missing table",
           "duplicate_doc_urba": "duplicate DOC_URBA", "idurba_mismatch": "IDURBA mismatch",
           "bad_date": "inconsistent date", "encoding_repaired": "encoding repaired"},
}

_MONTHS = {
    "fr": ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre",
           "novembre", "décembre"),
    "en": ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December"),
}
_MONTH_ABBR = {
    "fr": ("janv.", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août", "sept.", "oct.", "nov.", "déc."),
    "en": ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
}


def format_ha(value: Any, lang: str) -> str:
    """An area in hectares with two decimals: ``2,57 ha``."""
    return format_number(value, 2, lang, "ha")


def format_percent(share: Any, lang: str, decimals: int = 1) -> str:
    """A 0–1 share as a percentage: ``12,5 %`` (French) or ``12.5%`` (English)."""
    try:
        number = float(share) * 100
    except (TypeError, ValueError):
        return "—"
    text = format_number(number, decimals, lang)
    if text == "—":
        return text
    return f"{text}\u202f%" if lang == "fr" else f"{text}%"


def format_date(value: Any, lang: str, *, time: bool = False) -> str:
    """``25 novembre 2026`` / ``25 November 2026`` (with ``à 19:57 UTC`` when ``time``); text if unparsable."""
    if value is None or value == "":
        return "—"
    try:
        moment = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    text = f"{moment.day} {_MONTHS[lang][moment.month - 1]} {moment.year}"
    if time:
        zone = " UTC" if moment.utcoffset() == dt.timedelta(0) else ""
        text += (" à " if lang == "fr" else " at ") + f"{moment:%H:%M}{zone}"
    return text


def month_abbr(month: int, lang: str) -> str:
    """Short month name (1–12)."""
    return _MONTH_ABBR[lang][month - 1]
