"""Prefect flows: thin orchestration of ingest → match → analyse → compare → publish.

Floor 4 of the stairs: imports every room below (config, etl, geo, analysis, maps), never the CLI.
The flows only call the plain functions of those rooms; `flows.pipeline.monthly_pipeline` is the
scheduled monthly run (prefect.yaml), `ingest_new_deliveries`, `match_district`,
`analyze_district` and `publish_maps` its steps as flows of their own.
"""
