"""Prefect flows: thin orchestration of ingest → match → analyse → compare → publish.

Every stage is a task wrapping one plain function and reading the previous stage's stored output
from the warehouse; each runs once per district and month:

- `ingest_new_deliveries`: ingest the files of a landing folder not yet in the manifest;
- `match_district`: match the points of every month not yet matched (or stale) to the district;
- `analyze_district`: per-road figures for every named period, then the before/after comparison
  (intervals, DiD, braking, cut-through), the gate classification of every named period
  (through / into / out of / internal / perimeter, gate OD) and the screening of the default
  before period (candidates for calming ranked by score) and the monthly series of every complete
  month after the last named period (monitoring), stored;
- `publish_maps`: map, report, sheet, export and screening map from the stored results (no computation);
- `monthly_pipeline`: all of the above for every district, as the road bureau schedules it. Each
  run publishes into a dated folder of the output root (``<root>/<YYYY-MM>/``, the last complete
  month of the point store) and updates ``<root>/latest/``; earlier editions stay. An edition is
  written into a draft folder and appears whole or not at all: a failure (a full disk) leaves the
  edition and ``latest/`` as they were.

Every analysis and publishing task runs its stage through `analysis.stages.run_stage`: a stage
whose inputs (district files, point store, stored matches, parameters, versions) have not changed
since its recorded run does nothing and returns that run's summary, so a second monthly run with
nothing new delivered only checks (ingest, match and the stages are no-ops, latest/ is not copied
again).

Locations: a flow parameter, else the Prefect variables ``etc2calm_warehouse`` and
``etc2calm_output_root``, else the environment (ETC2CALM_WAREHOUSE, ETC2CALM_OUTPUT), else
data/warehouse and build/maps under the working directory. District files: the folders of the
Prefect variable ``etc2calm_districts`` (os.pathsep-separated), else of ETC2CALM_DISTRICTS, then the
bundled ones (config.district_files); the tasks get the file's path.

Without Prefect: `etc2calm run-monthly` runs the same stages (`analysis_steps`, `publish_edition`)
as plain functions, one district or all.

Tasks return small summaries (dicts of numbers and paths), never large data. A delivery with a
file that could not be ingested still ingests the good files and analyses every district, then
ends the flow run Failed, naming the bad files.

On a Dask cluster: `monthly_pipeline_dask` runs `monthly_pipeline` with prefect-dask's
DaskTaskRunner pointed at the scheduler address of its parameter, else of the Prefect variable
``etc2calm_dask_scheduler``, else of ETC2CALM_DASK_SCHEDULER. Its tasks then run on the cluster's
workers, and inside them the partition-parallel work (ingest staging per file group, the match
stage per month, cubes per month and piece range, the monthly series per month) runs on the same
cluster (`_cluster`), with the same stored results. The ID key never travels: the workers load it
from their own environment or key file (ETC2CALM_ID_KEY / ETC2CALM_ID_KEY_FILE), and no task takes
it as a parameter, so it reaches neither the Prefect database nor the flow-run logs.
"""

from __future__ import annotations

import datetime as dt
import os
from contextlib import contextmanager
from pathlib import Path

from prefect import flow, task
from prefect.states import Failed
from prefect.variables import Variable

from analysis import figures
from analysis.comparison import compare_district
from analysis.gates import evaluate_gates
from analysis.matchstage import match_stage
from analysis.monitoring import latest_month_verdict, monthly_series
from analysis.network import district_network
from analysis.pretrend import pre_period_series
from analysis.screening import screen_district
from analysis.stages import run_stage
from config.district_files import find_district, find_districts
from config.districts import load_district
from config.settings import (
    DEFAULT_RESAMPLES,
    DEFAULT_SEED,
    ENV_DASK_SCHEDULER,
    PREFECT_DISTRICTS_VARIABLE,
    default_output_dir,
    default_warehouse,
)
from etl.ingest import ingest_paths
from etl.sources import scan_delivery_paths
from etl.warehouse import connect, point_days, point_files
from maps.publish import PUBLISHED_FILES, publish_district, staged_output, update_latest


def warehouse_location(explicit: str | None = None) -> str:
    """The warehouse: parameter, else Prefect variable etc2calm_warehouse, else ETC2CALM_WAREHOUSE / data/warehouse."""
    return explicit or Variable.get("etc2calm_warehouse", default=None) or str(default_warehouse())


def output_root(explicit: str | None = None) -> str:
    """The output root: parameter, else Prefect variable etc2calm_output_root, else ETC2CALM_OUTPUT / build/maps."""
    return explicit or Variable.get("etc2calm_output_root", default=None) or str(default_output_dir())


def districts_folders(explicit: str | None = None) -> str | None:
    """The districts folders (os.pathsep-separated): parameter, else the Prefect variable
    etc2calm_districts, else None (config.district_files then reads ETC2CALM_DISTRICTS)."""
    return explicit or Variable.get(PREFECT_DISTRICTS_VARIABLE, default=None)


def district_file(ref: str, folders: str | None = None) -> str:
    """The district file of a key (or a path to a TOML file) in the districts folders: what the tasks load."""
    return str(find_district(ref, districts_folders(folders)))


def edition_name(warehouse: str) -> str:
    """The dated folder of this run's publications, 'YYYY-MM': the last complete month of the point
    store — the latest month whose last day has points (a delivery's spill-over into the first days of
    the next month does not name the edition) —, else the latest month with points."""
    months = sorted(point_files(warehouse))
    if not months:
        return "empty"
    days = point_days(warehouse)
    if days is None:  # a store that does not record its files' days: ask the points
        con = connect(warehouse, read_only=True)
        try:
            days = {
                r[0]
                for r in con.execute(
                    "SELECT DISTINCT operation_date FROM probe_points WHERE operation_date IS NOT NULL"
                ).fetchall()
            }
        finally:
            con.close()
    latest_day = max(days, default=None)
    since = dt.date(*months[max(0, len(months) - 13)], 1)  # the last 13 months name the edition
    days = {d for d in days if d >= since}
    for y, m in reversed(months):
        last = (dt.date(y, m, 28) + dt.timedelta(days=4)).replace(day=1) - dt.timedelta(days=1)
        if last in days:
            return f"{y:04d}-{m:02d}"
    return f"{latest_day:%Y-%m}" if latest_day else f"{months[-1][0]:04d}-{months[-1][1]:02d}"


def new_delivery_files(landing: str, warehouse: str) -> tuple[list[str], int]:
    """Files under `landing` the ingest must see, and how many known files were left out.

    A file is left out (not read, not hashed) when its resolved path is in the manifest as ingested
    with the same size and it has not been modified since. A file changed in place is passed on, so
    the ingest refuses it loudly (or replaces it with --replace); content already ingested under
    another path is recognised by the ingest itself (SHA-256). Folders or entries that cannot be
    read are passed on too, so the ingest names them and counts them as failed.
    """
    files, problems = scan_delivery_paths([landing])
    files = [f.resolve() for f in files]
    unreadable = [str(p) for p, _ in problems]
    db = Path(warehouse) / "warehouse.duckdb"
    if not db.exists():
        return [str(f) for f in files] + unreadable, 0
    con = connect(warehouse, read_only=True)
    try:
        done = {
            r[0]: (r[1], r[2])
            for r in con.execute(
                "SELECT source_path, size_bytes, max(ingested_at) FROM manifest WHERE status = 'ok' GROUP BY ALL"
            ).fetchall()
        }
    finally:
        con.close()

    def known(f: Path) -> bool:
        if str(f) not in done:
            return False
        size, at = done[str(f)]
        st = f.stat()
        return st.st_size == size and dt.datetime.fromtimestamp(st.st_mtime) <= at

    new = [str(f) for f in files if not known(f)]
    return new + unreadable, len(files) - len(new)


def treated_summary(district_key: str, result) -> list[dict]:
    """The treated street's pooled figures per period (for logs and the demo's table)."""
    g = result.group_stats
    rows = []
    for label, period in result.periods.items():
        row = g[(g["road_group"] == "treated") & (g["period"] == label)]
        rec = {"district": district_key, "period": label, "dates": f"{period.start}..{period.end}"}
        for k in (
            "n_vehicles",
            "n_points",
            "mean_kmh",
            "p85_kmh",
            "share_at_or_over_limit",
            "n_passages",
            "passage_share_at_or_over_limit",
            "limit_kmh",
        ):
            rec[k] = row.iloc[0][k] if len(row) else (0 if k.startswith("n_") else float("nan"))
        rows.append(rec)
    return rows


def latest_current(root: Path, edition: Path) -> bool:
    """Whether ``root/latest`` already holds exactly the edition's files (names, sizes, times): a run
    that published nothing new need not copy the edition again."""

    def listing(folder: Path) -> set[tuple[str, int, int]]:
        return {(f.name, f.stat().st_size, f.stat().st_mtime_ns // 1_000_000) for f in folder.iterdir() if f.is_file()}

    latest = root / "latest"
    return latest.is_dir() and edition.is_dir() and listing(latest) == listing(edition)


@contextmanager
def _cluster():
    """The Dask cluster this task runs on (under DaskTaskRunner), else None (the task's work runs here).

    `worker_client` secedes the task from its worker's thread pool while it waits, so the work it
    hands to the cluster can run on that worker too (no deadlock on a small cluster)."""
    try:
        from distributed import get_worker

        get_worker()
    except (ImportError, ValueError):
        yield None
        return
    from distributed import worker_client

    with worker_client() as client:
        yield client


def _run(task_obj, *args):
    """Run a task of a flow: through the flow's task runner when it is a DaskTaskRunner (the task runs
    on the cluster), else in the flow's thread."""
    from prefect.context import FlowRunContext
    from prefect_dask import DaskTaskRunner

    ctx = FlowRunContext.get()
    if ctx is not None and isinstance(ctx.task_runner, DaskTaskRunner):
        return task_obj.submit(*args).result()
    return task_obj(*args)


@task(name="find-new-files", retries=2, retry_delay_seconds=10, persist_result=False)
def find_new_files_task(landing: str, warehouse: str) -> tuple[list[str], int]:
    return new_delivery_files(landing, warehouse)


@task(name="ingest", retries=2, retry_delay_seconds=10, persist_result=False)
def ingest_task(paths: list[str], warehouse: str, n_known: int = 0) -> dict:
    with _cluster() as client:
        report = ingest_paths(paths, warehouse, client=client)
    return {
        "summary": report.summary() + (f" ({n_known} files already ingested, not read again)" if n_known else ""),
        "failed": [f.message for f in report.failed],
        "rows_read": report.total("rows_read"),
        "rows_stored": report.total("rows_stored"),
        "rows_quarantined": report.total("rows_quarantined"),
    }


@task(name="match", retries=1, retry_delay_seconds=10, persist_result=False)
def match_task(warehouse: str, district_key: str) -> str:
    """Match the district's months that are new or stale; returns a one-line summary."""
    with _cluster() as client:
        return match_stage(warehouse, district_network(load_district(district_key)), client=client).summary()


@task(name="analyze-periods", retries=1, retry_delay_seconds=10, persist_result=False)
def analyze_periods_task(warehouse: str, district_key: str) -> list[dict]:
    """Per-road figures for every named period of the district, stored; returns the treated street's rows."""
    district = load_district(district_key)

    def analyze() -> list[dict]:
        with _cluster() as client:
            return treated_summary(district.key, figures.analyze_district(warehouse, district, client=client))

    return run_stage(warehouse, district, "analyze", {}, analyze)


@task(name="compare", retries=1, retry_delay_seconds=10, persist_result=False)
def compare_task(
    warehouse: str, district_key: str, resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED
) -> dict:
    """Before/after with intervals, DiD, braking and cut-through, stored; returns the comparison rows."""
    district = load_district(district_key)

    def compare() -> dict:
        with _cluster() as client:
            ev = compare_district(warehouse, district, resamples=resamples, seed=seed, client=client)
        return {ind: t.to_dict("records") for ind, t in ev.comparisons.items()}

    return run_stage(warehouse, district, "compare", {"resamples": resamples, "seed": seed}, compare)


@task(name="gates", retries=1, retry_delay_seconds=10, persist_result=False)
def gates_task(warehouse: str, district_key: str) -> dict:
    """Gate classes and gate OD of every named period, stored; returns the whole-day share of each class per period."""
    district = load_district(district_key)
    if district.area_path is None:
        return {}

    def gates() -> dict:
        res = evaluate_gates(warehouse, district)
        return {
            label: {r.gate_class: r.share_trips for r in s[s["time_band"] == "all"].itertuples()}
            for label, s in res.summary.items()
        }

    return run_stage(warehouse, district, "gates", {}, gates)


@task(name="screen", retries=1, retry_delay_seconds=10, persist_result=False)
def screen_task(
    warehouse: str, district_key: str, resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED
) -> list[dict]:
    """Screening of the district's default period (the months before its before period when delivered, else
    the before period), stored; returns the top 5 (rank, road, score)."""
    district = load_district(district_key)

    def screen() -> list[dict]:
        with _cluster() as client:
            res = screen_district(
                warehouse,
                district,
                resamples=resamples,
                seed=seed,
                client=client,
                min_vehicles=district.screening_min_vehicles,
            )
        return res.table.head(5)[["rank", "road_id", "road_name", "score"]].to_dict("records")

    return run_stage(warehouse, district, "screen", {"resamples": resamples, "seed": seed}, screen)


@task(name="monitor", retries=1, retry_delay_seconds=10, persist_result=False)
def monitor_task(
    warehouse: str, district_key: str, resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED
) -> dict:
    """The monthly series after the last named period and the months before the before period (the
    pre-period trend), stored; returns their months and the latest month's verdict."""
    district = load_district(district_key)

    def monitor() -> dict:
        with _cluster() as client:
            series = monthly_series(warehouse, district, resamples=resamples, seed=seed, client=client)
        pre = pre_period_series(warehouse, district, resamples=resamples, seed=seed)
        verdict = latest_month_verdict(series)
        return {
            "months": sorted({str(m) for m in series["month"]}),
            "pre_period_months": sorted({str(m) for m in pre["month"]}),
            "latest": None
            if verdict is None
            else {k: (str(v) if k in ("month", "previous_month") else v) for k, v in verdict.items()},
        }

    return run_stage(warehouse, district, "monitor", {"resamples": resamples, "seed": seed}, monitor)


@task(name="publish", retries=1, retry_delay_seconds=10, persist_result=False)
def publish_task(warehouse: str, district_key: str, out_dir: str, edition: str | None = None) -> dict:
    """The district's map, report and sheet from the stored results, written into `out_dir` (the
    edition's draft folder, which becomes `edition` when every district is written); returns their
    paths in `edition` (default `out_dir`). Does nothing when the edition already holds what the
    same stored results published (analysis.stages)."""
    district = load_district(district_key)
    edition = Path(edition or out_dir)
    params = {"out_dir": str(edition.absolute())}

    def publish() -> dict:
        return _in_edition(publish_district(warehouse, district, out_dir), edition)

    return run_stage(warehouse, district, "publish", params, publish)


def analysis_steps(call, warehouse: str, district: str, resamples: int, seed: int) -> dict:
    """Every analysis stage of one district in the flow's order (match, figures, comparison, gates,
    screening, monthly series). `call(task, *args)` runs a task: `_run` in a flow, or `call_plain`
    (the task's plain function, no Prefect: `etc2calm run-monthly`). district: a key or a TOML path."""
    return {
        "match": call(match_task, warehouse, district),
        "summary": call(analyze_periods_task, warehouse, district),
        "comparisons": call(compare_task, warehouse, district, resamples, seed),
        "gates": call(gates_task, warehouse, district),
        "screening": call(screen_task, warehouse, district, resamples, seed),
        "monitoring": call(monitor_task, warehouse, district, resamples, seed),
    }


def call_plain(task_obj, *args):
    """Run a task's plain function, without Prefect (no API, no run records)."""
    return task_obj.fn(*args)


def resolve_districts(refs: list[str], locate=None) -> tuple[dict[str, str], dict[str, str]]:
    """The district file of each reference (key or path), keyed by district key, and the references
    whose file cannot be found or read, each with its one-line reason: a broken district file is
    reported, and the other districts still run. `locate(ref)` gives a reference's file (default:
    config.district_files.find_district over ETC2CALM_DISTRICTS and the bundled folder, no Prefect)."""
    locate = locate or (lambda ref: str(find_district(ref)))
    files, broken = {}, {}
    for ref in refs:
        try:
            path = locate(ref)
            files[load_district(path).key] = path
        except (ValueError, OSError) as exc:
            broken[ref] = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return files, broken


def run_districts(call, warehouse: str, files: dict[str, str], resamples: int, seed: int) -> tuple[dict, dict]:
    """`analysis_steps` of every district (key → district file); a district whose stages fail is set
    aside with its one-line reason and the others go on. Returns (results, failed)."""
    results, failed = {}, {}
    for key, ref in files.items():
        try:
            results[key] = analysis_steps(call, warehouse, ref, resamples, seed)
        except Exception as exc:  # one district's bad network or outline must not stop the others
            failed[key] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".rstrip(": ")
    return results, failed


def publish_edition(call, warehouse: str, files: dict[str, str], root: Path, edition: Path) -> dict:
    """Publish every district (key → district file) into the edition folder, then refresh root/latest;
    returns per key the published paths and their stable copies under latest/."""
    with staged_output(edition) as draft:  # the edition appears whole or not at all; latest/ keeps the last one
        results = {key: call(publish_task, warehouse, ref, str(draft), str(edition)) for key, ref in files.items()}
    latest = root / "latest" if latest_current(root, edition) else update_latest(root, edition)
    for paths in results.values():  # the stable addresses residents and the bureau's web page link to
        paths["latest"] = {k: str(latest / Path(v).name) for k, v in paths.items() if k in PUBLISHED_FILES and v}
    return {"latest": str(latest), "districts": results}


@flow(name="ingest-new-deliveries")
def ingest_new_deliveries(landing: str = "data/landing", warehouse: str | None = None) -> dict:
    """Ingest the files of `landing` (recursively) not yet in the warehouse's manifest."""
    warehouse = warehouse_location(warehouse)
    new, n_known = _run(find_new_files_task, landing, warehouse)
    return _run(ingest_task, new, warehouse, n_known)


@flow(name="match-district")
def match_district(district: str, warehouse: str | None = None) -> str:
    """Match the district's new or stale months."""
    return _run(match_task, warehouse_location(warehouse), district)


@flow(name="analyze-district")
def analyze_district(
    district: str, warehouse: str | None = None, resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED
) -> dict:
    """Match what is new, then figures for every named period, the before/after comparison, the gate
    classification, the screening and the monthly series of one district."""
    warehouse = warehouse_location(warehouse)
    return analysis_steps(_run, warehouse, district_file(district), resamples, seed)


@flow(name="publish-maps")
def publish_maps(district: str, warehouse: str | None = None, out_dir: str | None = None) -> dict:
    """Map, report and sheet of one district from the stored results, into the output root's dated
    folder (and latest/)."""
    warehouse = warehouse_location(warehouse)
    edition = Path(output_root(out_dir)) / edition_name(warehouse)
    with staged_output(edition) as draft:  # a failure leaves the edition and latest/ as they were
        paths = _run(publish_task, warehouse, district_file(district), str(draft), str(edition))
    if not latest_current(edition.parent, edition):
        update_latest(edition.parent, edition)
    return paths


def _in_edition(paths: dict, edition: Path) -> dict:
    """Published paths written into an edition's draft, as they are in the edition."""
    return {k: str(edition / Path(v).name) if k in PUBLISHED_FILES and v else v for k, v in paths.items()}


@flow(name="monthly-pipeline")
def monthly_pipeline(
    landing: str = "data/landing",
    warehouse: str | None = None,
    out_dir: str | None = None,
    districts: list[str] | None = None,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
):
    """Ingest what is new, then match, analyse, compare, classify by gates, screen, monitor and publish
    every district into ``<output root>/<YYYY-MM>/`` (the last complete month) and ``<output root>/latest/``.
    districts: keys or paths to district files; default: every district of the districts folders (the
    Prefect variable etc2calm_districts, else ETC2CALM_DISTRICTS) and the bundled ones.

    Ends Failed (after analysing and publishing every other district) when a delivered file could not
    be ingested or a district's file or stages failed, naming each.
    """
    warehouse, root = warehouse_location(warehouse), Path(output_root(out_dir))
    new, n_known = _run(find_new_files_task, landing, warehouse)
    ingest = _run(ingest_task, new, warehouse, n_known)
    folders = districts_folders()
    refs = districts or [s.key for s in find_districts(folders).found]
    files, broken = resolve_districts(refs, lambda ref: district_file(ref, folders))
    edition = root / edition_name(warehouse)
    results, failed = run_districts(_run, warehouse, files, resamples, seed)
    broken.update(failed)
    published = publish_edition(_run, warehouse, {k: files[k] for k in results}, root, edition)
    for key, paths in published["districts"].items():
        results[key].update(paths)
    summary = {
        "ingest": ingest,
        "edition": str(edition),
        "latest": published["latest"],
        "districts": results,
        "failed_districts": broken,
    }
    problems = [f"delivered file could not be ingested: {m}" for m in ingest["failed"]]
    problems += [f"district {k} not analysed: {why}" for k, why in broken.items()]
    if problems:
        return Failed(
            message=f"{len(problems)} problem(s); the other files were ingested and the other districts "
            "analysed and published: " + "; ".join(problems),
            data=summary,
        )
    return summary


@flow(name="monthly-pipeline-dask")
def monthly_pipeline_dask(
    landing: str = "data/landing",
    warehouse: str | None = None,
    out_dir: str | None = None,
    districts: list[str] | None = None,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    scheduler: str | None = None,
):
    """`monthly_pipeline` with its tasks on a Dask cluster (prefect-dask DaskTaskRunner).

    The scheduler's address: `scheduler`, else the Prefect variable ``etc2calm_dask_scheduler``, else
    ETC2CALM_DASK_SCHEDULER. The cluster's workers need etc2calm installed, the landing folder, the
    warehouse and the output root at the same paths (these are made absolute here, so the workers'
    working folder does not matter) and the ID key in their own environment or key file. The
    pipeline runs as a subflow; this run ends in its state (Failed when a delivered file failed).
    """
    from prefect_dask import DaskTaskRunner

    address = scheduler or Variable.get("etc2calm_dask_scheduler", default=None) or os.environ.get(ENV_DASK_SCHEDULER)
    if not address:
        raise ValueError(
            "no Dask scheduler: set the Prefect variable etc2calm_dask_scheduler (prefect variable set "
            "etc2calm_dask_scheduler tcp://HOST:8786), ETC2CALM_DASK_SCHEDULER, or the scheduler parameter"
        )
    # The pipeline of this file imported as flows.pipeline, the name the workers import (a deployment
    # loads the entrypoint file under another module name, which the cluster could not unpickle).
    import flows.pipeline as canonical

    pipeline = canonical.monthly_pipeline.with_options(task_runner=DaskTaskRunner(address=address))
    return pipeline(
        landing=str(Path(landing).absolute()),
        warehouse=str(Path(warehouse_location(warehouse)).absolute()),
        out_dir=str(Path(output_root(out_dir)).absolute()),
        districts=districts,
        resamples=resamples,
        seed=seed,
        return_state=True,
    )
