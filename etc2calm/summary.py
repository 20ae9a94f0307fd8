"""The short before/after summary printed by the demo and the CLI: figures read from the warehouse."""

from __future__ import annotations

import pandas as pd

from analysis.results import load_comparisons, load_group_stats
from config.districts import District


def treated_table(warehouse, districts: list[District]) -> pd.DataFrame:
    """One row per district and period: the treated street's stored pooled figures (group_period_stats)."""
    rows = []
    for d in districts:
        g = load_group_stats(warehouse, d.key)
        for r in g[g["road_group"] == "treated"].itertuples() if len(g) else []:
            rows.append({"district": d.name_ja, "period": r.period, "dates": f"{r.period_start:%Y-%m-%d}..{r.period_end:%Y-%m-%d}",
                         "n_vehicles": r.n_vehicles, "n_points": r.n_points, "mean_kmh": r.mean_kmh, "p85_kmh": r.p85_kmh,
                         "share_at_or_over_limit": r.share_at_or_over_limit,
                         "passage_share_at_or_over_limit": r.passage_share_at_or_over_limit})  # fmt: skip
    return pd.DataFrame(rows)


def _width(text: str) -> int:
    return sum(2 if ord(c) > 0x2E7F else 1 for c in text)


def format_summary(table: pd.DataFrame) -> str:
    """Fixed-width text of treated_table rows."""
    header = (f"{'district':<14} {'period':<8} {'dates':<22} {'vehicles':>8} {'points':>7} {'mean':>6} {'p85':>6} "
              f"{'>=limit':>8} {'passages>=':>10}")  # fmt: skip
    lines = [header, "-" * len(header)]
    pct = lambda v: "" if pd.isna(v) else f"{100 * v:.1f}%"  # noqa: E731
    num = lambda v: "" if pd.isna(v) else f"{v:.1f}"  # noqa: E731
    for r in table.itertuples():
        name = r.district + " " * max(0, 14 - _width(r.district))  # full-width characters take two columns
        lines.append(f"{name} {r.period:<8} {r.dates:<22} {r.n_vehicles:>8} {r.n_points:>7} {num(r.mean_kmh):>6} "
                     f"{num(r.p85_kmh):>6} {pct(r.share_at_or_over_limit):>8} {pct(r.passage_share_at_or_over_limit):>10}")  # fmt: skip
    lines.append("mean / p85 in km/h over points; >=limit: share of points at or over the speed limit; passages>=: share of "
                 "passages (one vehicle's traversal of the street) whose mean speed is at or over it; vehicles: distinct 運行ID")
    return "\n".join(lines)


def format_headline(warehouse, districts: list[District]) -> str:
    """Mean-speed change on treated and comparison streets and the DiD, with 95 % intervals, per district,
    from the stored comparison_results (changes computed before rounding)."""
    lines = ["before → after (default periods), 95 % cluster-bootstrap intervals over vehicles:"]
    for d in districts:
        comp = load_comparisons(warehouse, d.key)
        if "mean" not in comp:
            continue
        rows = comp["mean"].set_index("unit")
        t, c, did = rows.loc["treated"], rows.loc["control"], rows.loc["did"]
        lines.append(
            f"  {d.key:<10} treated mean {t['before']:.1f} → {t['after']:.1f} km/h ({t['change']:+.1f} [{t['ci_low']:+.1f}, "
            f"{t['ci_high']:+.1f}]); comparison {c['change']:+.1f} [{c['ci_low']:+.1f}, {c['ci_high']:+.1f}]; "
            f"DiD {did['change']:+.1f} [{did['ci_low']:+.1f}, {did['ci_high']:+.1f}] km/h"
        )
        for ind, word in (("share", "share of points ≥ limit"), ("passage_share", "share of passages ≥ limit")):
            if ind in comp:
                s = comp[ind].set_index("unit")
                lines.append(
                    f"  {'':<10} treated {word} {100 * s.loc['treated', 'before']:.1f}% → {100 * s.loc['treated', 'after']:.1f}% "
                    f"(DiD {100 * s.loc['did', 'change']:+.1f} points [{100 * s.loc['did', 'ci_low']:+.1f}, "
                    f"{100 * s.loc['did', 'ci_high']:+.1f}])"
                )
    return "\n".join(lines)
