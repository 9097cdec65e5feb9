"""The one record schema and its atomic writer (shared by the checks and the benchmarks)."""

import json
import math
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from tailext.validate import records
from tailext.validate.records import (Clock, RecordError, new_record, read_record,
                                      validate_record, write_json, write_record, write_text)

ROOT = Path(__file__).resolve().parents[1]


def _record():
    record = new_record("demo", seed=7, configuration={"grid": (1, 2), "size": np.int64(3)},
                        mode="full", total=2)
    record["results"]["cells"]["a"] = {"value": np.float64(0.5), "array": np.arange(3)}
    return Clock().stamp(record, cells_run=1, interrupted=False)


def test_round_trip_keeps_every_field(tmp_path):
    record = _record()
    write_record(tmp_path / "demo.json", record)
    back = read_record(tmp_path / "demo.json")
    assert back == json.loads(json.dumps(record, default=records._jsonable))
    assert back["configuration"] == {"grid": [1, 2], "size": 3}
    assert back["results"]["cells"]["a"] == {"value": 0.5, "array": [0, 1, 2]}
    assert set(back) == set(records.FIELDS)
    env = back["environment"]
    for key in ("python", "numpy", "numba", "scipy", "platform", "cpu_count", "threads"):
        assert env[key] is not None, key
    timing = back["timing"]
    (invocation,) = timing["invocations"]
    assert timing["wall_s"] == invocation["wall_s"] >= 0
    assert timing["started"] == invocation["started"] <= timing["finished"]
    assert back["completeness"] == {"mode": "full", "finished": 0, "total": 2,
                                    "complete": False}


def test_a_second_stamp_of_one_invocation_replaces_its_entry():
    record = _record()
    clock = Clock()
    clock.stamp(record, cells_run=1, interrupted=False)
    clock.stamp(record, cells_run=2, interrupted=True)
    assert [i["cells_run"] for i in record["timing"]["invocations"]] == [1, 2]
    assert record["timing"]["invocations"][-1]["interrupted"] is True


def test_nan_is_refused_and_the_old_file_survives(tmp_path):
    path = tmp_path / "x.json"
    write_json(path, {"ok": 1})
    with pytest.raises(ValueError, match="Out of range float values"):
        write_json(path, {"bad": math.nan})
    assert json.loads(path.read_text()) == {"ok": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]  # no temporary file left


def test_an_interrupted_write_leaves_the_old_file(tmp_path, monkeypatch):
    path = write_text(tmp_path / "report.md", "old")

    def interrupted(*_):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_text(path, "new")
    assert path.read_text() == "old" and len(list(tmp_path.iterdir())) == 1


@pytest.mark.parametrize("change, message", [
    (lambda r: r.pop("timing"), "has no 'timing' field"),
    (lambda r: r.update(schema=99), "has schema 99"),
    (lambda r: r.update(seed="7"), "'seed' has type str"),
    (lambda r: r["completeness"].update(mode="fast"), "completeness must give mode"),
])
def test_invalid_records_are_named(change, message):
    record = _record()
    change(record)
    with pytest.raises(RecordError, match=message):
        validate_record(record)


def test_unreadable_json_is_a_record_error(tmp_path):
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(RecordError, match="not readable JSON"):
        read_record(tmp_path / "bad.json")
    assert read_record(tmp_path / "missing.json") is None


def test_benchmarks_write_the_same_schema(tmp_path):
    # the benchmarks import the writer, they do not carry their own
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import bench_scaling
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    assert bench_scaling.write_record is records.write_record
    paths = sorted((ROOT / "benchmarks" / "results").glob("**/*.json"))
    assert len(paths) >= 8
    for path in paths:
        validate_record(json.loads(path.read_text()), source=str(path))


def test_committed_validation_results_are_records():
    paths = sorted((ROOT / "docs" / "results").glob("**/*.json"))
    assert {p.parent.name for p in paths} >= {"appendix-e", "rates", "lemmas", "simulator"}
    for path in paths:
        record = read_record(path)
        assert record["completeness"]["complete"], path
