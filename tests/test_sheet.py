"""The printable A4 district sheet (matplotlib PDF + PNG): content, suppression and Japanese glyphs."""

from __future__ import annotations

import re
from pathlib import Path
import time
import warnings
import zlib

import pandas as pd
import pytest
from fontTools.ttLib import TTFont
from PIL import Image

from maps.district_sheet import A4_INCHES, PNG_DPI, japanese_font, render_district_sheet
from test_maps import make_district, make_roads, make_stats


def pdf_text_streams(pdf: bytes) -> bytes:
    """All (inflated) content streams of a PDF, to look for embedded font names and drawing commands."""
    out = [pdf]
    for m in re.finditer(rb"stream\r?\n(.*?)\r?\nendstream", pdf, re.S):
        try:
            out.append(zlib.decompress(m.group(1)))
        except zlib.error:
            pass
    return b"\n".join(out)


@pytest.fixture
def sheet(tmp_path):
    headline = pd.DataFrame([
        ("treated", "before", 120, 31.2, 38.4, 0.42),
        ("treated", "after", 110, 24.9, 29.5, 0.19),
        ("comparison", "before", 95, 29.0, 34.0, 0.35),
        ("comparison", "after", 97, 29.4, 34.6, 0.38),
    ], columns=["road_group", "period", "n_vehicles", "mean_kmh", "p85_kmh", "share_at_or_over_limit"])  # fmt: skip
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t0 = time.perf_counter()
        result = render_district_sheet(make_district(tmp_path), make_roads(), make_stats(), tmp_path / "s" / "sheet.pdf",
                                       before="before", after="after", headline=headline)
        seconds = time.perf_counter() - t0
    return result, seconds, [str(w.message) for w in caught]


def test_sheet_files_a4_and_fast(sheet):
    result, seconds, _ = sheet
    pdf = result.pdf.read_bytes()
    assert pdf.startswith(b"%PDF-")
    assert len(re.findall(rb"/Type\s*/Page(?![a-z])", pdf)) == 1  # one page
    box = re.search(rb"/MediaBox\s*\[\s*0\s+0\s+([\d.]+)\s+([\d.]+)\s*\]", pdf)
    assert box and abs(float(box[1]) - 595.4) < 1.5 and abs(float(box[2]) - 841.7) < 1.5  # A4 in points
    with Image.open(result.png) as im:
        w, h = im.size
    assert abs(w - A4_INCHES[0] * PNG_DPI) <= 1 and abs(h - A4_INCHES[1] * PNG_DPI) <= 1
    assert seconds < 15  # a few seconds on the 2-core machine (first call loads matplotlib's font cache)


def test_sheet_japanese_font_has_every_glyph(sheet):
    result, _, messages = sheet
    assert not [m for m in messages if "missing from font" in m or "Glyph" in m], messages
    font = result.font
    assert font == japanese_font()
    with TTFont(font.path, fontNumber=font.index, lazy=True) as tt:
        cmap = tt.getBestCmap()
        family = tt["name"].getDebugName(1)
    assert family == font.name
    drawn = "".join(result.texts)
    assert "対策前" in drawn and "変化" in drawn and "データ不足" in drawn
    missing = sorted({ch for ch in drawn if not ch.isspace() and ord(ch) not in cmap})
    assert missing == [], f"{font.name} lacks glyphs for {missing}"
    # the font is embedded in the PDF (TrueType subset), not substituted by the viewer
    streams = pdf_text_streams(result.pdf.read_bytes())
    assert re.search(rb"/BaseFont\s*/[A-Z]{0,6}\+?NotoSansCJK|/BaseFont\s*/\S*IPAex", streams), "font not embedded"


def test_sheet_content_and_suppression(sheet):
    result, _, _ = sheet
    drawn = result.texts
    joined = "\n".join(drawn)
    assert "テスト町一丁目（港北区）生活道路の速度" in drawn
    assert "30 km/h 以上の割合：対策前と対策後の比較" in drawn
    assert "対策前（整備前）：2023年4月1日〜2023年6月30日" in drawn
    assert "合成データ（デモ用）— 実際の観測値ではありません" in drawn
    assert "対策道路" in drawn and "比較道路" in drawn  # labels on the maps
    # headline table: pooled treated / comparison figures, change as after − before of shown figures
    for cell in ("対策道路（まとめ）", "比較道路（まとめ）", "120", "31.2 km/h", "24.9 km/h", "42%", "19%",
                 "\u221223 ポイント", "\u22128.9 km/h", "+3 ポイント"):
        assert cell in drawn, cell
    assert "ETC2.0 プローブデータ" in joined and "10 台未満" in joined
    # the sparse road r3 (7 / 6 vehicles) shows no figure anywhere on the sheet
    for figure in ("87%", "86%", "47.7", "53.3", "46.1", "52.2"):
        assert figure not in joined, figure


def test_sheet_without_headline_lists_roads_and_hides_sparse_groups(tmp_path):
    stats = make_stats()
    stats.loc[stats["road_id"] == "r2", "n_vehicles"] = 4  # the comparison road now under the minimum
    result = render_district_sheet(make_district(tmp_path), make_roads(), stats, tmp_path / "sheet.pdf",
                                   before="before", after="after", synthetic=False, png=False)
    drawn = result.texts
    assert result.png is None and result.pdf.exists()
    assert "対策道路：桜通り" in drawn and "比較道路：楓通り" in drawn
    assert "データ不足" in drawn and "10 未満" in drawn
    assert "29.0 km/h" not in drawn and "35%" not in drawn  # r2's figures are suppressed
    assert not any("合成データ" in t for t in drawn)


def test_sheet_rejects_bad_input(tmp_path):
    with pytest.raises(ValueError, match="no period 'during'"):
        render_district_sheet(make_district(tmp_path), make_roads(), make_stats(), tmp_path / "x.pdf",
                              before="before", after="during")


def test_write_district_sheet_for_a_bundled_district(tmp_path):
    """publish.write_district_sheet with figures in hand (as the flow has them): PDF and PNG side by side."""
    from types import SimpleNamespace

    from analysis.matchstage import assign_roles
    from config.districts import load_district
    from maps.publish import write_district_sheet
    from geo.network import load_roads
    from test_browser import fabricated_stats

    district = load_district("okurayama")
    roads = assign_roles(load_roads(district.network_path), district.treated_roads, district.comparison_roads)
    stats = fabricated_stats(roads)
    groups = pd.DataFrame([("treated", p, 300, 30.0 - 5 * (p == "after"), 36.0, 0.6 - 0.4 * (p == "after"))
                           for p in ("before", "after")] + [("comparison", p, 250, 29.0, 35.0, 0.5)
                                                            for p in ("before", "after")],
                          columns=["road_group", "period", "n_vehicles", "mean_kmh", "p85_kmh",
                                   "share_at_or_over_limit"])  # fmt: skip
    results = SimpleNamespace(roads=roads, road_stats=stats, group_stats=groups)  # as analysis.results holds them
    out = write_district_sheet(tmp_path / "no-warehouse", district, tmp_path / "maps" / "okurayama_sheet.pdf",
                               results=results)
    assert out == {"pdf": str(tmp_path / "maps" / "okurayama_sheet.pdf"),
                   "png": str(tmp_path / "maps" / "okurayama_sheet.png")}
    assert all(Path(p).stat().st_size > 20_000 for p in out.values())


def test_sheet_falls_back_to_the_bundled_font(tmp_path, monkeypatch):
    """Without any system Japanese font, the pinned matplotlib-fontja's IPAexGothic draws every glyph."""
    import maps.district_sheet as ds

    monkeypatch.setattr(ds, "JAPANESE_FONTS", ("No Such Font JP",))
    font = ds.japanese_font()
    assert font.name == "IPAexGothic" and font.path.name == "ipaexg.ttf"
    result = ds.render_district_sheet(make_district(tmp_path), make_roads(), make_stats(), tmp_path / "f" / "sheet.pdf",
                                      before="before", after="after")  # fmt: skip
    assert result.font == font
    with TTFont(font.path, lazy=True) as tt:
        cmap = tt.getBestCmap()
    drawn = "".join(result.texts)
    assert "対策前" in drawn
    assert sorted({ch for ch in drawn if not ch.isspace() and ord(ch) not in cmap}) == []
