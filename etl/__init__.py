"""ETC2.0 deliveries into the warehouse: layouts, reading, validation, quarantine, pseudonymisation, Parquet + DuckDB.

Floor 1 of the stairs: imports config only (never geo, analysis or above).

What engineers call:

- `etl.ingest.ingest_paths` (and `recover`): deliveries into a warehouse, nothing lost or doubled;
- `etl.warehouse.connect`, `read_snapshot`, `refresh_views`: the warehouse and its views;
- `etl.spec.layouts`, `load_behavior_layout`: the delivered file layouts (様式1-2, 様式1-3, 挙動履歴);
- `etl.validate.read_payload`, `validation_rules`; `etl.stage.stage_file`, `process_payload`;
- `etl.pseudonymise.load_id_key`, `key_fingerprint`; `etl.cluster.dask_client`;
- `etl.synthetic.generate_delivery`, `generate_bench_delivery`: synthetic (合成) deliveries.

Modules with a leading underscore (`_ingest_*`, `_testhooks`) serve this package only.
"""
