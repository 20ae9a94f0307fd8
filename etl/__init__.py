"""ETC2.0 deliveries into the warehouse: layouts, reading, validation, quarantine, pseudonymisation, Parquet + DuckDB.

Floor 1 of the stairs: imports config only (never geo, analysis or above).

What engineers call:

- `etl.ingest.ingest_paths` (and `recover`): deliveries into a warehouse, nothing lost or doubled;
- `etl.warehouse.connect`, `read_snapshot`, `refresh_views`: the warehouse and its views;
- `etl.spec.layouts`, `load_behavior_layout`: the delivered file layouts (様式1-2, 様式1-3, 挙動履歴);
- `etl.validate.read_payload`, `validation_rules`; `etl.stage.stage_file`, `process_payload`;
- `etl.pseudonymise.load_id_key`, `key_fingerprint`; `etl.cluster.dask_client`;
- `etl.synthetic.generate_delivery`, `generate_bench_delivery`: synthetic (合成) deliveries;
- `etl.sources.scan_delivery_paths`: the delivery files under given paths (archives opened);
- `etl.schema`: the DDL and Arrow schemas of every stored table (docs/warehouse.md is generated
  from it), `transaction`;
- `etl.mesh.mesh2_code`, `mesh2_bounds`: JIS X 0410 2次メッシュ codes (deliveries come per mesh);
- `etl.failures.writing`, `io_failure_message`: a full disk or a bad path as one clear line;
- `etl.memory.trim_freed_memory`: freed memory handed back to the operating system.

Modules with a leading underscore (`_ingest_*`, `_kernels`: the compiled kernels of the ingest,
`_testhooks`) serve this package only: they are not API and may change without notice.
"""
