"""The printable A4 district sheet (matplotlib PDF + PNG): content, headline, devices, credits,
suppression, English, and Japanese glyphs."""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import warnings
import zlib
from pathlib import Path

import pytest
from fontTools.ttLib import TTFont
from PIL import Image

from config.districts import Device
from conftest import MAP_LAT, MAP_LON, fabricated_results, make_map_district, make_map_results, make_map_stats
from maps.district_sheet import A4_INCHES, PNG_DPI, _wrap, japanese_font, render_district_sheet
from maps.headline import headline
from maps.public import public_results

CREATED = dt.date(2024, 7, 10)
DEVICES = (
    Device("hump", MAP_LON + 0.0006, MAP_LAT, dt.date(2023, 10, 1), illustrative=True),
    Device("narrowing", MAP_LON + 0.0013, MAP_LAT, dt.date(2023, 10, 1), illustrative=True),
)


def pdf_text_streams(pdf: bytes) -> bytes:
    """All (inflated) content streams of a PDF, to look for embedded font names and drawing commands."""
    out = [pdf]
    for m in re.finditer(rb"stream\r?\n(.*?)\r?\nendstream", pdf, re.S):
        with contextlib.suppress(zlib.error):
            out.append(zlib.decompress(m.group(1)))
    return b"\n".join(out)


@pytest.fixture(scope="module")
def sheet(tmp_path_factory):
    """The hand-made district's sheet, rendered once for the tests that read it."""
    tmp_path = tmp_path_factory.mktemp("sheet")
    district = make_map_district(tmp_path, devices=DEVICES)
    results = make_map_results(tmp_path, district=district)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = render_district_sheet(district, results, tmp_path / "s" / "sheet.pdf", created=CREATED)
    return result, district, results, [str(w.message) for w in caught]


def test_sheet_files_are_one_a4_page(sheet):
    result, *_ = sheet
    pdf = result.pdf.read_bytes()
    assert pdf.startswith(b"%PDF-")
    assert len(re.findall(rb"/Type\s*/Page(?![a-z])", pdf)) == 1
    box = re.search(rb"/MediaBox\s*\[\s*0\s+0\s+([\d.]+)\s+([\d.]+)\s*\]", pdf)
    assert box and abs(float(box[1]) - 595.4) < 1.5 and abs(float(box[2]) - 841.7) < 1.5  # A4 in points
    with Image.open(result.png) as im:
        w, h = im.size
    assert abs(w - A4_INCHES[0] * PNG_DPI) <= 1 and abs(h - A4_INCHES[1] * PNG_DPI) <= 1


def test_sheet_japanese_font_has_every_glyph(sheet):
    result, _, _, messages = sheet
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
    streams = pdf_text_streams(result.pdf.read_bytes())
    assert re.search(rb"/BaseFont\s*/[A-Z]{0,6}\+?NotoSansCJK|/BaseFont\s*/\S*IPAex", streams), "font not embedded"


def test_sheet_prints_headline_devices_publisher_and_date(sheet):
    result, district, results, _ = sheet
    drawn = result.texts
    joined = "\n".join(drawn)
    h = headline(district, public_results(results))
    assert h.lead["ja"] in drawn and all(s in drawn for s in h.details["ja"])
    assert "ハンプ（位置は例示）" in drawn and "狭さく（位置は例示）" in drawn
    assert "作成：etc2calm ／ 作成日：2024年7月10日 ／ 出典：ETC2.0プローブ情報（国土交通省）" in drawn
    assert "テスト町一丁目（港北区）生活道路の速度" in drawn
    assert "30 km/h 以上で通過した車の割合：対策前と対策後の比較" in drawn
    assert "対策前（整備前）：2023年4月1日〜2023年6月30日" in drawn
    assert "合成データ（デモ用）— 実際の観測値ではありません" in drawn
    # key figures: pooled treated / comparison from comparison_results, change rounded once
    for cell in (
        "対策道路（まとめ）",
        "比較道路（まとめ）",
        "120",
        "31.2 km/h",
        "24.9 km/h",
        "38.4%",
        "6.1%",
        "\u221232.3 ポイント",
        "\u22128.9 km/h",
        "+0.3 km/h",
        "+2.5 ポイント",
    ):
        assert cell in drawn, cell
    assert "ETC2.0 プローブデータ" in joined and "10 台未満" in joined
    for figure in ("87.3", "77.7", "74.3", "47.7", "53.3", "46.1", "52.2"):  # r3 (7 / 6 vehicles)
        assert figure not in joined, figure


def test_sheet_in_english(tmp_path):
    district = make_map_district(tmp_path, devices=DEVICES)
    results = make_map_results(tmp_path, district=district)
    result = render_district_sheet(district, results, tmp_path / "en.pdf", lang="en", png=False, created=CREATED)
    drawn = result.texts
    assert "Test-cho 1, Kohoku Ward: speeds on residential streets" in drawn
    assert "After the measures, speeds on the treated street clearly fell." in drawn
    assert "Published by etc2calm · 10 Jul 2024 · Source: ETC2.0 probe data (MLIT, Japan)" in drawn
    assert "Speed hump (position illustrative)" in drawn and "Synthetic data (demo) — not real observations" in drawn
    assert "\u221232.3 points" in drawn and "Treated street(s)" in drawn
    assert not [t for t in drawn if re.search(r"[\u3040-\u30ff]", t) and "Source" not in t]  # no kana left


def test_sheet_hides_a_sparse_comparison_group(tmp_path):
    stats = make_map_stats()
    stats.loc[stats["road_id"] == "r2", "n_vehicles"] = 4  # the comparison road now under the minimum
    result = render_district_sheet(
        make_map_district(tmp_path),
        make_map_results(tmp_path, stats=stats),
        tmp_path / "sheet.pdf",
        synthetic=False,
        png=False,
    )
    drawn = result.texts
    assert result.png is None and result.pdf.exists()
    assert "データ不足" in drawn and "10 未満" in drawn
    assert "29.0 km/h" not in drawn and "30.1%" not in drawn and "34.0 km/h" not in drawn  # r2's figures
    assert not any("合成データ" in t for t in drawn)


def test_wrap_keeps_latin_words_together():
    assert _wrap("85パーセンタイル速度 (km/h)", 23) == ["85パーセンタイル速度", "(km/h)"]
    assert _wrap("The share of vehicles at or over 30 km/h", 16, "en") == [
        "The share of",
        "vehicles at or",
        "over 30 km/h",
    ]


def test_write_district_sheet_for_a_bundled_district(tmp_path):
    """publish.write_district_sheet with stored results in hand (as the flow has them): PDF and PNG side by side."""
    from config.districts import load_district
    from maps.publish import write_district_sheet

    district = load_district("okurayama")
    out = write_district_sheet(
        tmp_path / "no-warehouse",
        district,
        tmp_path / "maps" / "okurayama_sheet.pdf",
        results=fabricated_results(district),
    )
    assert out == {
        "pdf": str(tmp_path / "maps" / "okurayama_sheet.pdf"),
        "png": str(tmp_path / "maps" / "okurayama_sheet.png"),
    }
    assert all(Path(p).stat().st_size > 20_000 for p in out.values())


def test_sheet_falls_back_to_the_bundled_font(tmp_path, monkeypatch):
    """Without any system Japanese font, the pinned matplotlib-fontja's IPAexGothic draws every glyph."""
    import maps.district_sheet as ds

    monkeypatch.setattr(ds, "JAPANESE_FONTS", ("No Such Font JP",))
    font = ds.japanese_font()
    assert font.name == "IPAexGothic" and font.path.name == "ipaexg.ttf"
    result = ds.render_district_sheet(
        make_map_district(tmp_path), make_map_results(tmp_path), tmp_path / "f" / "sheet.pdf", png=False
    )
    assert result.font == font
    with TTFont(font.path, lazy=True) as tt:
        cmap = tt.getBestCmap()
    assert sorted({ch for ch in "".join(result.texts) if not ch.isspace() and ord(ch) not in cmap}) == []
