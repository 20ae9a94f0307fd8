"""Publishing: a district's map, report, A4 sheet and GIS export from the results stored in the warehouse.

Nothing here computes a figure: every number comes from `analysis.results.load_district_results`
(the same rows the engineers' tables hold) and every output applies the same suppression
(maps.public: nothing from fewer than config.settings.PUBLIC_MIN_VEHICLES distinct vehicles).
"""

from __future__ import annotations

import datetime as dt
import errno
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from analysis.pretrend import screening_period
from analysis.results import DistrictResults, ResultsMissing, load_district_results
from config.districts import District
from config.settings import PUBLIC_LANGUAGES, wards_path
from etl.failures import writing
from maps import wording as w
from maps.district_map import render_district_map
from maps.district_sheet import render_district_sheet
from maps.export import export_district
from maps.report import render_report
from maps.screening_map import default_area, write_screening_map

# The keys of publish_district's answer that name published files, in the order they are listed.
PUBLISHED_FILES = (
    "map",
    "report",
    "sheet",
    "sheet_png",
    "report_en",
    "sheet_en",
    "sheet_png_en",
    "export",
    "screening",
)


def _suffix(lang: str) -> str:
    """'' for Japanese (the default file names), '.en' for English."""
    return "" if lang == "ja" else f".{lang}"


def write_district_map(
    warehouse: str | Path,
    district: District,
    out: str | Path,
    results: DistrictResults | None = None,
    *,
    lang: str = "ja",
    created: dt.date | None = None,
) -> Path:
    """The self-contained HTML map of `district` from stored results (opens in `lang`, switchable); returns its path."""
    results = results or load_district_results(warehouse, district)
    return render_district_map(district, results, Path(out), lang=lang, wards_path=wards_path(), created=created)


def write_district_sheet(
    warehouse: str | Path,
    district: District,
    out_pdf: str | Path,
    results: DistrictResults | None = None,
    *,
    lang: str = "ja",
    created: dt.date | None = None,
) -> dict[str, str]:
    """The printable A4 sheet (PDF, and the same page as PNG next to it) from stored results."""
    results = results or load_district_results(warehouse, district)
    sheet = render_district_sheet(district, results, Path(out_pdf), lang=lang, created=created)
    return {"pdf": str(sheet.pdf), "png": str(sheet.png)}


def write_district_report(
    warehouse: str | Path,
    district: District,
    out: str | Path,
    results: DistrictResults | None = None,
    filter_text: str | None = None,
    *,
    lang: str = "ja",
    created: dt.date | None = None,
) -> Path:
    """The district report (HTML) from stored results of one filter (default: all points)."""
    results = results or load_district_results(warehouse, district, filter_text)
    return render_report(district, results, out, lang=lang, created=created)


def publish_district(
    warehouse: str | Path,
    district: District,
    out_dir: str | Path,
    *,
    langs: tuple[str, ...] = PUBLIC_LANGUAGES,
    export: bool = True,
    created: dt.date | None = None,
) -> dict[str, str]:
    """Map, report and sheet of `district` (per language in `langs`; Japanese under the plain names,
    English as <key>_report.en.html, <key>_sheet.en.pdf …), the GeoPackage export and, when the
    district's screening of its default before period is stored (the monthly flow's), the screening
    map <key>_screening.html into `out_dir`, all from the stored results. Returns the paths: map,
    report, sheet, sheet_png, report_en, sheet_en, sheet_png_en, export, screening (the last only
    when a screening is stored).

    The files appear in `out_dir` together or not at all (`staged_output`): a failure (a full disk)
    leaves `out_dir` with exactly the files it had."""
    out_dir = Path(out_dir)
    results = load_district_results(warehouse, district)
    created = w.creation_date(district, created)
    with staged_output(out_dir) as draft:
        paths = _write_district_files(warehouse, district, draft, results, langs, export, created)
    return {k: str(out_dir / Path(v).name) for k, v in paths.items()}


def _write_district_files(warehouse, district, out_dir: Path, results, langs, export, created) -> dict[str, str]:
    paths: dict[str, str] = {}
    map_lang = "ja" if "ja" in langs else langs[0]
    out = out_dir / f"{district.key}.html"
    with writing(out):
        paths["map"] = str(write_district_map(warehouse, district, out, results, lang=map_lang, created=created))
    for lang in langs:
        tag = "" if lang == "ja" else f"_{lang}"
        out = out_dir / f"{district.key}_report{_suffix(lang)}.html"
        with writing(out):
            paths[f"report{tag}"] = str(
                write_district_report(warehouse, district, out, results, lang=lang, created=created)
            )
        out = out_dir / f"{district.key}_sheet{_suffix(lang)}.pdf"
        with writing(out):
            sheet = write_district_sheet(warehouse, district, out, results, lang=lang, created=created)
        paths[f"sheet{tag}"], paths[f"sheet_png{tag}"] = sheet["pdf"], sheet["png"]
    if export:
        out = out_dir / f"{district.key}.gpkg"
        with writing(out):
            paths["export"] = str(export_district(warehouse, district, out).path)
    out = out_dir / f"{district.key}_screening.html"
    with writing(out):
        paths.update(write_district_screening_map(warehouse, district, out, lang=map_lang, created=created))
    return paths


@contextmanager
def staged_output(out_dir: str | Path) -> Iterator[Path]:
    """A draft folder beside `out_dir` to write an output set (an edition, a district's files) into: when
    the block ends normally its files replace those of the same names in `out_dir` (created if need be)
    by renames, which need no free space; when it fails (a full disk) the draft is removed and `out_dir`
    keeps exactly what it had, so a half-written edition never shows."""
    out_dir = Path(out_dir)
    draft = out_dir.parent / f".{out_dir.name}.draft-{os.getpid()}"
    shutil.rmtree(draft, ignore_errors=True)
    try:
        with writing(draft):
            draft.mkdir(parents=True)
        yield draft
    except BaseException:
        shutil.rmtree(draft, ignore_errors=True)
        raise
    if not out_dir.exists():
        os.replace(draft, out_dir)
        return
    for f in sorted(draft.iterdir()):
        target = out_dir / f.name
        if target.is_dir() and not f.is_dir():
            raise IsADirectoryError(errno.EISDIR, "a folder has the name of a published file", str(target))
        os.replace(f, target)
    draft.rmdir()


def write_district_screening_map(
    warehouse: str | Path, district: District, out: str | Path, *, lang: str = "ja", created: dt.date | None = None
) -> dict[str, str]:
    """The screening map of the district's stored screening of its default period (the months before
    its before period when delivered, else the before period: analysis.pretrend.screening_period) and
    own area (what the monthly flow's `screen` task stores): {'screening': path}, or {} when none is stored."""
    before, _ = screening_period(warehouse, district)
    try:
        path = write_screening_map(
            warehouse,
            district.key,
            out,
            area=default_area(district),
            period=(before.start, before.end),
            district=district,
            lang=lang,
            created=created,
        )
    except ResultsMissing:
        return {}
    return {"screening": str(path)}


def update_latest(root: str | Path, edition: str | Path) -> Path:
    """Make ``root/latest`` a copy of the edition folder (e.g. ``root/2019-06``), swapped in by renames so
    readers never see a half-copied folder; earlier editions stay where they are. Returns latest's path.
    A copy that fails (a full disk) is removed and ``latest`` keeps the previous edition (WriteFailed)."""
    root, edition = Path(root), Path(edition)
    latest, tmp, old = root / "latest", root / f".latest.tmp{os.getpid()}", root / f".latest.old{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        _copy_folder(edition, tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if latest.exists():
        os.replace(latest, old)
    os.replace(tmp, latest)
    shutil.rmtree(old, ignore_errors=True)
    return latest


def _copy_folder(src: Path, dst: Path) -> None:
    """Copy a folder file by file, each copy's failure naming the file written (shutil.copytree gathers them)."""
    with writing(dst):
        dst.mkdir(parents=True)
    for f in sorted(src.iterdir()):
        if f.is_dir():
            _copy_folder(f, dst / f.name)
        else:
            with writing(dst / f.name):
                shutil.copy2(f, dst / f.name)
