"""The short before/after summary table printed by the demo and the flows (figures from the warehouse)."""

from __future__ import annotations

import pandas as pd

from analysis.figures import AnalysisResult
from config.districts import District


def treated_summary(district: District, result: AnalysisResult) -> pd.DataFrame:
    """One row per period: the treated street's pooled figures (all treated roads' points together)."""
    g = result.group_stats
    g = g[g["road_group"] == "treated"].copy()
    rows = []
    for label, period in result.periods.items():
        row = g[g["period"] == label]
        rec = {
            "district": district.name_ja,
            "period": label,
            "dates": f"{period.start}..{period.end}",
            "n_vehicles": 0,
            "n_points": 0,
            "mean_kmh": float("nan"),
            "p85_kmh": float("nan"),
            "share_at_or_over_limit": float("nan"),
            "limit_kmh": float("nan"),
        }
        if len(row):
            r = row.iloc[0]
            rec.update({k: r[k] for k in ("n_vehicles", "n_points", "mean_kmh", "p85_kmh", "share_at_or_over_limit", "limit_kmh")})
        rows.append(rec)
    return pd.DataFrame(rows)


def format_summary(table: pd.DataFrame) -> str:
    """Fixed-width text of treated_summary rows (several districts concatenated)."""
    header = f"{'district':<14} {'period':<8} {'dates':<22} {'vehicles':>8} {'points':>7} {'mean':>6} {'p85':>6} {'>=limit':>8}"
    lines = [header, "-" * len(header)]
    for r in table.itertuples():
        share = "" if pd.isna(r.share_at_or_over_limit) else f"{100 * r.share_at_or_over_limit:6.1f}%"
        mean = "" if pd.isna(r.mean_kmh) else f"{r.mean_kmh:6.1f}"
        p85 = "" if pd.isna(r.p85_kmh) else f"{r.p85_kmh:6.1f}"
        # Pad Japanese names by display width (full-width characters take two columns).
        width = sum(2 if ord(c) > 0x2E7F else 1 for c in r.district)
        name = r.district + " " * max(0, 14 - width)
        lines.append(f"{name} {r.period:<8} {r.dates:<22} {r.n_vehicles:>8} {r.n_points:>7} {mean:>6} {p85:>6} {share:>8}")
    lines.append("mean / p85 in km/h; >=limit: share of points at or over the speed limit; vehicles: distinct 運行ID")
    return "\n".join(lines)


def format_headline(districts: dict) -> str:
    """Mean-speed change on treated and comparison streets and the DiD, with 95 % intervals, per district."""
    lines = ["before → after (default periods), 95 % cluster-bootstrap intervals over vehicles:"]
    for key, d in districts.items():
        rows = {r["unit"]: r for r in d["comparisons"].get("mean", [])}
        share = {r["unit"]: r for r in d["comparisons"].get("share", [])}
        if not rows:
            continue
        t, c, did = rows["treated"], rows["control"], rows["did"]
        lines.append(
            f"  {key:<10} treated mean {t['before']:.1f} → {t['after']:.1f} km/h ({t['change']:+.1f} [{t['ci_low']:+.1f}, {t['ci_high']:+.1f}]); "
            f"comparison {c['change']:+.1f} [{c['ci_low']:+.1f}, {c['ci_high']:+.1f}]; "
            f"DiD {did['change']:+.1f} [{did['ci_low']:+.1f}, {did['ci_high']:+.1f}] km/h"
        )
        if share:
            s = share["treated"]
            lines.append(
                f"  {'':<10} treated share ≥ limit {100 * s['before']:.1f}% → {100 * s['after']:.1f}% "
                f"(DiD {100 * share['did']['change']:+.1f} points [{100 * share['did']['ci_low']:+.1f}, {100 * share['did']['ci_high']:+.1f}])"
            )
    return "\n".join(lines)
