"""The stored match's schema is declared once (etl.schema): the documented views read its columns
with the types the writer stores, and the match stage writes exactly that schema."""

from __future__ import annotations

import pyarrow as pa

from etl.schema import EVENTS_SCHEMA, MATCHED_POINTS_COLUMNS, MATCHED_POINTS_SQL, POINTS_SCHEMA, TRIPS_SCHEMA

# Arrow type -> the DuckDB types that hold every value of it exactly (the views CAST the stored
# column to their documented type: widening is allowed, narrowing would lose values).
HOLDS = {
    pa.int8(): {"TINYINT", "SMALLINT", "INTEGER", "BIGINT"},
    pa.int32(): {"INTEGER", "BIGINT"},
    pa.int64(): {"BIGINT"},
    pa.float64(): {"DOUBLE"},
    pa.timestamp("us"): {"TIMESTAMP"},
}


def test_every_view_column_read_from_the_stored_match_holds_its_stored_type():
    read_from_match = {c: sql[2:] for c, sql in MATCHED_POINTS_SQL.items() if sql.startswith("m.")}
    assert read_from_match, "the view reads the stored match"
    stored = {f.name: f.type for f in POINTS_SCHEMA}
    for column, source in read_from_match.items():
        assert source in stored, f"{column} reads m.{source}, which the match does not store"
        assert MATCHED_POINTS_COLUMNS[column][0] in HOLDS[stored[source]], column


def test_every_stored_column_is_shown_or_read_by_the_view():
    shown = {sql[2:] for sql in MATCHED_POINTS_SQL.values() if sql.startswith("m.")}
    assert set(POINTS_SCHEMA.names) == shown  # nothing stored that engineers cannot see


def test_schemas_name_each_column_once():
    for schema in (POINTS_SCHEMA, TRIPS_SCHEMA, EVENTS_SCHEMA):
        assert len(set(schema.names)) == len(schema.names)
