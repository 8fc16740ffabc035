"""The Parquet lake: round trips, ranges, idempotent and atomic writes, orphaned temporaries."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import qpipe.data.lake as lake_module
from qpipe.data.lake import Lake, WriteSummary
from qpipe.data.schema import ACTION_COLUMNS, BAR_COLUMNS
from qpipe.errors import LakeError

D1, D2, D3 = dt.date(2024, 1, 2), dt.date(2024, 1, 3), dt.date(2024, 1, 4)
REPO = Path(__file__).resolve().parents[2]


def bars(rows: list[tuple]) -> pd.DataFrame:
    """A bars frame from (date, symbol, close) rows; other prices derived from close."""
    frame = pd.DataFrame(rows, columns=["date", "symbol", "close"])
    frame["date"] = pd.to_datetime(frame["date"]).astype("datetime64[ns]")
    frame["symbol"] = frame["symbol"].astype("str")
    frame["close"] = frame["close"].astype(np.float64)
    frame["open"] = frame["close"] - 1.0
    frame["high"] = frame["close"] + 1.0
    frame["low"] = frame["close"] - 2.0
    frame["volume"] = frame["close"] * 100.0
    return frame[list(BAR_COLUMNS)]


def expected(frame: pd.DataFrame) -> pd.DataFrame:
    """What the lake reads back for ``frame``: sorted by (date, symbol), fresh index."""
    return frame.sort_values(["date", "symbol"]).reset_index(drop=True)


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every path under ``root`` (hidden files included) with the bytes of the files."""
    if not root.exists():
        return {}
    return {
        str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None)
        for p in sorted(root.rglob("*"))
    }


def temporaries(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.name.endswith(".tmp"))


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    return Lake(tmp_path / "lake")


SAMPLE = bars(
    [
        (D2, "MSFT", 11.0),
        (D1, "MSFT", 10.0),
        (D1, "AAPL", 20.0),
        (D2, "AAPL", 21.0),
        (D3, "AAPL", 22.0),
        (D3, "IBM", np.nan),
        (D1, "IBM", 30.0),
    ]
)


# ---------------------------------------------------------------------- round trip


def test_round_trip(lake: Lake) -> None:
    summary = lake.write("bars", SAMPLE, [D1, D2, D3])
    assert summary == WriteSummary("bars", 3, 7, D1, D3)
    got = lake.read("bars")
    assert list(got.columns) == list(BAR_COLUMNS)
    assert got["date"].dtype == "datetime64[ns]"
    assert got[["open", "close", "volume"]].dtypes.eq(np.float64).all()
    pd.testing.assert_frame_equal(got, expected(SAMPLE))
    assert lake.dates("bars") == [D1, D2, D3]
    assert lake.tables() == ["bars"]
    assert lake.path("bars") == lake.root / "bars"
    files = sorted(p.relative_to(lake.root).as_posix() for p in lake.root.rglob("*.parquet"))
    assert files == [f"bars/date={d}/data.parquet" for d in (D1, D2, D3)]
    # the date lives in the path only; rows in a file are sorted by symbol
    part = pq.read_table(lake.root / f"bars/date={D1}/data.parquet")
    assert part.column_names == ["symbol", "open", "high", "low", "close", "volume"]
    assert part.column("symbol").to_pylist() == ["AAPL", "IBM", "MSFT"]


def test_readable_by_duckdb_and_pyarrow_datasets(lake: Lake) -> None:
    lake.write("bars", SAMPLE, [D1, D2, D3])
    pattern = str(lake.root / "bars" / "*" / "*.parquet")
    rows = duckdb.sql(
        f"select count(*), min(date) from read_parquet('{pattern}', hive_partitioning=true)"
    ).fetchall()
    assert rows == [(7, D1)]
    table = pq.read_table(lake.root / "bars")  # hive directory as a pyarrow dataset
    assert table.num_rows == 7 and "date" in table.column_names


def test_cross_section(lake: Lake) -> None:
    lake.write("bars", SAMPLE, [D1, D2, D3])
    got = lake.cross_section("bars", D1)
    pd.testing.assert_frame_equal(got, lake.read("bars", D1, D1))
    assert list(got["symbol"]) == ["AAPL", "IBM", "MSFT"]
    assert list(lake.cross_section("bars", "2024-01-03", ["close"]).columns) == [
        "date",
        "symbol",
        "close",
    ]
    missing = lake.cross_section("bars", dt.date(2024, 1, 5))
    assert missing.empty and list(missing.columns) == list(BAR_COLUMNS)


# ---------------------------------------------------------------------- ranges


def test_ranges_are_inclusive_and_open_ended(lake: Lake) -> None:
    lake.write("bars", SAMPLE, [D1, D2, D3])
    full = expected(SAMPLE)

    def between(lo: dt.date, hi: dt.date) -> pd.DataFrame:
        keep = full["date"].between(pd.Timestamp(lo), pd.Timestamp(hi))
        return full[keep].reset_index(drop=True)

    pd.testing.assert_frame_equal(lake.read("bars", D2, D3), between(D2, D3))
    pd.testing.assert_frame_equal(lake.read("bars", "2024-01-02", "2024-01-02"), between(D1, D1))
    pd.testing.assert_frame_equal(lake.read("bars", start=D2), between(D2, D3))
    pd.testing.assert_frame_equal(lake.read("bars", end=pd.Timestamp(D2)), between(D1, D2))
    pd.testing.assert_frame_equal(
        lake.read("bars", dt.datetime(2023, 12, 1), dt.date(2024, 2, 1)), full
    )
    empty = lake.read("bars", dt.date(2024, 1, 5), None)
    assert empty.empty and list(empty.columns) == list(BAR_COLUMNS)
    assert empty["date"].dtype == "datetime64[ns]"


def test_column_and_symbol_selection(lake: Lake) -> None:
    lake.write("bars", SAMPLE, [D1, D2, D3])
    got = lake.read("bars", columns=["close", "open"], symbols=["IBM", "AAPL", "NOPE"])
    assert list(got.columns) == ["date", "symbol", "close", "open"]
    want = expected(SAMPLE)
    want = want[want["symbol"].isin(["IBM", "AAPL"])][["date", "symbol", "close", "open"]]
    pd.testing.assert_frame_equal(got, want.reset_index(drop=True))
    assert list(lake.read("bars", columns=["date", "symbol"]).columns) == ["date", "symbol"]
    assert lake.read("bars", symbols=[]).empty
    with pytest.raises(LakeError, match="nope"):
        lake.read("bars", columns=["close", "nope"])


def test_missing_tables(lake: Lake) -> None:
    got = lake.read("bars")
    assert got.empty and list(got.columns) == list(BAR_COLUMNS)
    assert list(lake.read("corporate_actions").columns) == list(ACTION_COLUMNS)
    assert lake.dates("bars") == [] and lake.tables() == []
    with pytest.raises(LakeError, match="factors"):
        lake.read("factors")
    with pytest.raises(LakeError, match="factors"):
        lake.cross_section("factors", D1)
    with pytest.raises(LakeError, match="table name"):
        lake.read("../escape")


# ---------------------------------------------------------------------- idempotency


def test_writes_are_idempotent_and_replace(lake: Lake) -> None:
    lake.write("bars", SAMPLE, [D1, D2, D3])
    lake.write("bars", SAMPLE, [D1, D2, D3])
    assert len(lake.read("bars")) == len(SAMPLE)
    # rewriting one date replaces it: new values, and symbols no longer there are gone
    lake.write("bars", bars([(D2, "AAPL", 99.0)]), [D2])
    got = lake.read("bars")
    assert len(got) == len(SAMPLE) - 1
    assert got.loc[got["date"] == pd.Timestamp(D2), "close"].tolist() == [99.0]
    pd.testing.assert_frame_equal(lake.read("bars", D1, D1), lake.cross_section("bars", D1))
    assert lake.dates("bars") == [D1, D2, D3]


def test_empty_partitions_record_synced_sessions(lake: Lake) -> None:
    actions = pd.DataFrame(
        {"date": [pd.Timestamp(D2)], "symbol": ["AAPL"], "split_ratio": [2.0]}
        | {"dividend": [0.0], "factor": [0.5]}
    )
    summary = lake.write("corporate_actions", actions, [D1, D2, D3])
    assert summary.partitions == 3 and summary.rows == 1
    assert lake.dates("corporate_actions") == [D1, D2, D3]
    empty_day = lake.cross_section("corporate_actions", D1)
    assert empty_day.empty and list(empty_day.columns) == list(ACTION_COLUMNS)
    got = lake.read("corporate_actions")
    assert got["symbol"].tolist() == ["AAPL"] and got["factor"].tolist() == [0.5]
    # a day without any rows at all
    lake.write("corporate_actions", actions.iloc[:0], ["2024-01-05"])
    assert lake.dates("corporate_actions")[-1] == dt.date(2024, 1, 5)
    assert (
        pq.read_metadata(lake.root / "corporate_actions/date=2024-01-05/data.parquet").num_rows == 0
    )


def test_other_tables_infer_float_and_string_columns(lake: Lake) -> None:
    frame = pd.DataFrame(
        {
            "score": [1, 2, 3],
            "date": [pd.Timestamp(D1), pd.Timestamp(D1), pd.Timestamp(D2)],
            "symbol": ["B", "A", "A"],
            "bucket": ["x", None, "z"],
            "flag": [True, False, True],
        }
    )
    lake.write("factors", frame, [D1, D2])
    got = lake.read("factors")
    assert list(got.columns) == ["date", "symbol", "score", "bucket", "flag"]
    assert got["score"].tolist() == [2.0, 1.0, 3.0] and got["score"].dtype == np.float64
    assert got["flag"].dtype == np.float64
    assert got["bucket"].isna().tolist() == [True, False, False]
    assert pq.read_schema(lake.root / f"factors/date={D1}/data.parquet").field("bucket").type == (
        "string"
    )
    assert lake.tables() == ["factors"]
    # the columns of a table stay put unless every date is rewritten
    with pytest.raises(LakeError, match="differ"):
        lake.write("factors", frame.drop(columns="flag").iloc[2:], [D2, D3])
    lake.write("factors", frame.drop(columns="flag"), [D1, D2])
    assert list(lake.read("factors").columns) == ["date", "symbol", "score", "bucket"]


# ---------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("frame", "dates", "message"),
    [
        (SAMPLE, [D1, D2], "outside the dates written, first 2024-01-04"),
        (pd.concat([SAMPLE, SAMPLE.iloc[[2]]]), [D1, D2, D3], r"duplicate.*2024-01-02.*AAPL"),
        (SAMPLE.drop(columns="volume"), [D1, D2, D3], "volume"),
        (SAMPLE.drop(columns="symbol"), [D1, D2, D3], "symbol"),
        (SAMPLE.assign(close="abc"), [D1, D2, D3], "close"),
        (SAMPLE.assign(symbol=None), [D1, D2, D3], "symbol"),
        (SAMPLE, ["2024-13-01"], "not a date"),
    ],
)
def test_bad_writes_leave_the_lake_unchanged(
    lake: Lake, frame: pd.DataFrame, dates: list, message: str
) -> None:
    lake.write("bars", SAMPLE, [D1, D2, D3])
    before = snapshot(lake.root)
    with pytest.raises(LakeError, match=message):
        lake.write("bars", frame, dates)
    assert snapshot(lake.root) == before


def test_writing_no_dates(lake: Lake) -> None:
    assert lake.write("bars", SAMPLE.iloc[:0], []) == WriteSummary("bars", 0, 0, None, None)
    with pytest.raises(LakeError, match="no dates"):
        lake.write("bars", SAMPLE, [])
    assert not lake.root.exists()


# ---------------------------------------------------------------------- atomicity


def test_failure_mid_write_leaves_everything_as_it_was(
    lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    days = [dt.date(2024, 1, d) for d in range(2, 12)]
    first = bars([(d, s, 1.0) for d in days[:6] for s in ("A", "B", "C")])
    lake.write("bars", first, days[:6])
    before = snapshot(lake.root)

    real = pq.write_table
    calls, lock = [0], threading.Lock()

    def failing(*args: object, **kwargs: object) -> None:
        with lock:
            calls[0] += 1
            n = calls[0]
        if n == 4:
            raise OSError("disk full (injected)")
        real(*args, **kwargs)

    monkeypatch.setattr(lake_module.pq, "write_table", failing)
    second = bars([(d, s, 2.0) for d in days for s in ("A", "B", "D")])
    with pytest.raises(OSError, match="injected"):
        lake.write("bars", second, days)
    assert calls[0] >= 4
    assert snapshot(lake.root) == before  # byte-identical, no temporaries, no new directories
    monkeypatch.setattr(lake_module.pq, "write_table", real)
    lake.write("bars", second, days)
    pd.testing.assert_frame_equal(lake.read("bars"), expected(second))


def test_killed_writer_leaves_previous_partitions_readable(lake: Lake) -> None:
    """SIGKILL a writer that has written its temporaries but not renamed them yet."""
    days = [D1, D2, D3]
    old = bars([(d, f"S{i:03d}", 1.0) for d in days for i in range(50)])
    lake.write("bars", old, days)
    before = snapshot(lake.root)
    marker = lake.root.parent / "temporaries-written"
    child = textwrap.dedent(
        f"""
        import os, time, numpy as np, pandas as pd
        import qpipe.data.lake as lake_module
        real = lake_module._run_all
        def stall(fn, *args):
            if fn is os.replace:  # every temporary is on disk: wait to be killed
                open({str(marker)!r}, "w").close()
                time.sleep(60)
            real(fn, *args)
        lake_module._run_all = stall
        days = pd.to_datetime({[str(d) for d in days]!r})
        n = 20_000
        frame = pd.DataFrame({{
            "date": np.repeat(days.values, n),
            "symbol": np.tile([f"X{{i:06d}}" for i in range(n)], len(days)),
        }})
        for c in ("open", "high", "low", "close", "volume"):
            frame[c] = 2.0
        lake_module.Lake({str(lake.root)!r}).write("bars", frame, days)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", child], env=env)
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert proc.poll() is None, "writer exited early"
            assert time.monotonic() < deadline, "writer too slow"
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    orphans = temporaries(lake.root)
    assert len(orphans) == 3
    assert {k: v for k, v in snapshot(lake.root).items() if not k.endswith(".tmp")} == before
    pd.testing.assert_frame_equal(lake.read("bars"), expected(old))
    assert lake.dates("bars") == days
    # the next write to a partition clears its orphan
    lake.write("bars", old[old["date"] == pd.Timestamp(D1)], [D1])
    assert len(temporaries(lake.root)) == 2
    assert not list((lake.root / f"bars/date={D1}").glob("*.tmp"))


def test_readers_ignore_orphaned_temporaries(lake: Lake) -> None:
    early = SAMPLE[SAMPLE["date"] < "2024-01-04"]
    lake.write("bars", early, [D1, D2])
    (lake.root / f"bars/date={D1}/.data.parquet.dead.tmp").write_bytes(b"half a file")
    lonely = lake.root / "bars/date=2024-01-09"  # a new date whose writer died
    lonely.mkdir()
    (lonely / ".data.parquet.dead.tmp").write_bytes(b"PAR1 garbage")
    ghost = lake.root / "factors/date=2024-01-09"  # a new table whose writer died
    ghost.mkdir(parents=True)
    (ghost / ".data.parquet.dead.tmp").write_bytes(b"")
    assert lake.dates("bars") == [D1, D2]
    assert lake.tables() == ["bars"]
    pd.testing.assert_frame_equal(lake.read("bars"), expected(early))
    pattern = str(lake.root / "bars" / "*" / "*.parquet")
    assert duckdb.sql(f"select count(*) from read_parquet('{pattern}')").fetchall() == [(5,)]
    lake.write("bars", SAMPLE[SAMPLE["date"] == "2024-01-02"], [D1, "2024-01-09"])
    assert temporaries(lake.root / "bars") == []
    assert lake.dates("bars") == [D1, D2, dt.date(2024, 1, 9)]


# ---------------------------------------------------------------------- property

DAYS = [dt.date(2024, 1, d) for d in (2, 3, 4, 5, 8)]
rows_strategy = st.lists(
    st.tuples(
        st.sampled_from(DAYS),
        st.sampled_from(["A", "B", "AA", "Zz", "é"]),
        st.floats(allow_nan=True, allow_infinity=False, width=64),
    ),
    max_size=12,
    unique_by=lambda r: (r[0], r[1]),
)
write_strategy = st.tuples(rows_strategy, st.sets(st.sampled_from(DAYS), max_size=5))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(write_strategy, min_size=1, max_size=4))
def test_read_equals_last_write_per_date(writes: list[tuple[list[tuple], set[dt.date]]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        lake = Lake(Path(tmp))
        model: dict[dt.date, list[tuple]] = {}
        for rows, extra_days in writes:
            days = {r[0] for r in rows} | extra_days
            lake.write("bars", bars(rows), sorted(days))
            for day in days:
                model[day] = [r for r in rows if r[0] == day]
        want = bars([r for day in sorted(model) for r in model[day]])
        got = lake.read("bars")
        pd.testing.assert_frame_equal(got, expected(want), check_index_type=False)
        assert lake.dates("bars") == sorted(model)


def test_write_reports_progress(tmp_path) -> None:
    from qpipe.progress import listening

    days = pd.bdate_range("2024-01-01", periods=250)
    frame = pd.DataFrame({"date": days, "symbol": "A", "close": 1.0})
    seen: list[tuple[str, int, int]] = []
    with listening(lambda stage, done, total: seen.append((stage, done, total))):
        Lake(tmp_path).write("prices", frame, days)
    assert seen[0] == ("write prices", 0, 250) and seen[-1] == ("write prices", 250, 250)
    assert [d for _, d, _ in seen] == sorted(d for _, d, _ in seen)


def test_row_counts_from_the_footers(lake: Lake) -> None:
    lake.write("bars", SAMPLE, [D1, D2, D3, "2024-01-05"])  # 2024-01-05: an empty partition
    want = SAMPLE.groupby(SAMPLE["date"].dt.date).size().to_dict() | {dt.date(2024, 1, 5): 0}
    assert lake.row_counts("bars") == want == {D1: 3, D2: 2, D3: 2, dt.date(2024, 1, 5): 0}
    assert lake.row_counts("bars", D2, D3) == {D2: 2, D3: 2}
    assert lake.row_counts("nothing") == {}
