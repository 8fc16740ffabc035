import datetime as dt
from pathlib import Path

import pytest

from qpipe.errors import ConfigError
from qpipe.settings import DEFAULT_CONFIG, data_dir, load_settings, parse_settings


def test_packaged_default_is_valid_and_complete():
    s = load_settings(DEFAULT_CONFIG)
    assert s.data.source == "synthetic"
    assert s.calendar.exchange == "XNYS"
    assert s.data.synthetic.n_stocks >= 200 and s.data.synthetic.n_etfs >= 10
    assert s.live.dry_run is True and s.live.broker == "paper"


def test_default_file_matches_model_defaults():
    # The YAML documents the defaults: it must say the same as the models, except that it
    # ships example strategies (a file of its own has none unless it declares them), starts
    # the demo's partitions in 2019 (a file of its own starts at its source's first session)
    # and caps an order at the paper account's 1,000,000 (a file of its own: no cap).
    default = load_settings(DEFAULT_CONFIG)
    assert set(default.strategies) == {"multi_factor", "etf_rotation"}
    assert default.calendar.start == dt.date(2019, 1, 2)
    assert default.limits.max_order_notional == default.backtest.initial_cash == 1_000_000
    assert parse_settings({}).strategies == {}
    assert parse_settings({}).calendar.start is None
    model = parse_settings({
        **default.model_dump(mode="json"), "strategies": {},
        "calendar": {**default.calendar.model_dump(mode="json"), "start": None},
        "limits": {**default.limits.model_dump(mode="json"), "max_order_notional": None},
        "live": {**default.live.model_dump(mode="json"), "max_order_notional": None},
    })  # fmt: skip
    assert model == parse_settings({})


def test_packaged_default_dump_is_what_is_in_effect_and_loads_again():
    # `qpipe config` prints this dump: a strategy parameter its strategy ignores (vol_window
    # with equal weights) is left out, since written in a file it would be refused.
    default = load_settings(DEFAULT_CONFIG)
    dumped = default.model_dump(mode="json")
    assert "vol_window" not in dumped["strategies"]["multi_factor"]["params"]
    assert dumped["strategies"]["multi_factor"]["params"]["hold_band"] == 10
    assert parse_settings(dumped) == default


def test_env_var_selects_the_file(tmp_path, monkeypatch):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("calendar:\n  exchange: XSHG\n")
    monkeypatch.setenv("QPIPE_CONFIG", str(cfg))
    assert load_settings().calendar.exchange == "XSHG"


def test_partial_file_keeps_other_defaults():
    s = parse_settings({"data": {"synthetic": {"seed": 11}}})
    assert s.data.synthetic.seed == 11 and s.data.synthetic.n_stocks == 200


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"universe": {"symbol": ["A"]}}, "universe.symbol: unknown key"),
        ({"calendar": {"exchange": "XLON"}}, "calendar.exchange: Value error, must be one of"),
        ({"data": {"source": "csv"}}, "data.source: Input should be 'synthetic', 'sample'"),
        ({"data": {"synthetic": {"n_stocks": 0}}}, "data.synthetic.n_stocks: Input should be"),
        ({"calendar": {"start": "yesterday"}}, "calendar.start: Input should be a valid date"),
        ({"live": {"port": 70000}}, "live.port: Input should be less than or equal to 65535"),
        ({"data": {"source": "files"}}, "source 'files' needs a 'files' section"),
        ({"strategies": {"s": {"kind": "magic"}}}, "strategies.s.kind: must be one of 'linear'"),
    ],
)
def test_bad_values_name_the_key(raw, expected):
    with pytest.raises(ConfigError) as err:
        parse_settings(raw, source="my.yaml")
    assert "invalid configuration in my.yaml" in str(err.value)
    assert expected in str(err.value)


def test_files_source_needs_a_start():
    with pytest.raises(ConfigError, match=r"calendar.start is required with the files source"):
        parse_settings({"data": {"source": "files", "files": {"path": "x.csv"}}})


def test_relative_file_paths_resolve_against_the_config(tmp_path):
    cfg = tmp_path / "sub" / "c.yaml"
    cfg.parent.mkdir()
    cfg.write_text(
        "calendar: {start: 2020-01-02}\ndata: {source: files, files: {path: bars.csv}}\n"
    )
    s = load_settings(cfg)
    assert s.data.files.path == tmp_path / "sub" / "bars.csv"
    assert s.calendar.start == dt.date(2020, 1, 2)


def test_unreadable_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match=r"cannot read configuration file .*nope.yaml"):
        load_settings(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: [unclosed\n")
    with pytest.raises(ConfigError, match=r"invalid YAML in .*bad.yaml"):
        load_settings(bad)
    top = tmp_path / "list.yaml"
    top.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_settings(top)


def test_data_dir_follows_env(monkeypatch, tmp_path):
    monkeypatch.setenv("QPIPE_DATA", str(tmp_path / "x"))
    assert data_dir() == tmp_path / "x"
    monkeypatch.delenv("QPIPE_DATA")
    monkeypatch.chdir(tmp_path)
    assert data_dir() == Path(tmp_path / "data").resolve()


def test_close_only_files_cannot_fill_at_the_open():
    files = {"path": "x.csv", "columns": {"open": None}}
    raw = {"calendar": {"start": "2020-01-02"}, "data": {"source": "files", "files": files}}
    with pytest.raises(ConfigError) as err:
        parse_settings(raw, source="my.yaml")
    message = str(err.value)
    assert "backtest.fill 'next_open'" in message
    assert "data.files.columns.open is null" in message
    assert "set backtest.fill to next_close or close" in message
    assert "(top level)" not in message
    for fill in ("next_close", "close"):
        assert parse_settings({**raw, "backtest": {"fill": fill}}).backtest.fill == fill
    # Another source does not read the files section.
    assert parse_settings({"data": {"files": files}}).data.source == "synthetic"


def test_files_delimiter_is_one_character():
    files = {"path": "x.csv", "delimiter": ";;"}
    with pytest.raises(ConfigError, match=r"data.files.delimiter: String should have at most 1"):
        parse_settings({"data": {"files": files}})
    tab = parse_settings({"data": {"files": {"path": "x.csv", "delimiter": "\t"}}})
    assert tab.data.files.delimiter == "\t"


def test_actions_and_instruments_paths_resolve_against_the_config(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "calendar: {start: 2020-01-02}\n"
        "data: {source: files, files: {path: bars.csv, actions: meta/actions.csv,"
        " instruments: /abs/instruments.parquet}}\n"
    )
    files = load_settings(cfg).data.files
    assert files.actions == tmp_path / "meta" / "actions.csv"
    assert files.instruments == Path("/abs/instruments.parquet")
    assert files.columns.delisted is None


ROTATION = {"kind": "rotation", "params": {"symbols": ["A", "B", "C", "D"], "top_k": 3}}
LINEAR = {"kind": "linear", "params": {"factors": {"mom": 1.0}, "top_k": 20}}


def test_limits_default_and_the_older_keys_are_aliases():
    s = parse_settings({})
    assert (s.limits.max_weight, s.limits.max_gross, s.limits.max_turnover) == (1.0, 1.0, 2.0)
    assert (s.limits.max_order_notional, s.limits.lot_size, s.limits.cash_buffer) == (
        None, None, 0.0,
    )  # fmt: skip
    live = {"max_weight": 0.5, "max_order_notional": 5e5}
    old = parse_settings({"backtest": {"lot_size": 10}, "live": live})
    assert (old.limits.lot_size, old.limits.max_weight, old.limits.max_order_notional) == (
        10, 0.5, 5e5,
    )  # fmt: skip
    new = parse_settings({"limits": {"lot_size": 10, "max_weight": 0.5}})
    assert (new.backtest.lot_size, new.live.max_weight, new.live.max_order_notional) == (
        10, 0.5, None,
    )  # fmt: skip
    assert parse_settings(new.model_dump(mode="json")) == new


def test_limits_and_their_older_keys_must_agree():
    with pytest.raises(ConfigError, match=r"limits\.lot_size \(5\.0\) and backtest\.lot_size"):
        parse_settings({"limits": {"lot_size": 5}, "backtest": {"lot_size": 10}})
    both = parse_settings({"limits": {"max_weight": 0.3}, "live": {"max_weight": 0.3}})
    assert both.limits.max_weight == 0.3


@pytest.mark.parametrize(
    ("strategy", "limits", "message"),
    [
        # 1/3 each vs a 0.2 per-name limit: refused live on every rebalance
        (ROTATION, {"max_weight": 0.2},
         r"strategies\.s\.params\.top_k \(3: equal weights of 0\.3333\) can exceed "
         r"limits\.max_weight \(0\.2\)"),
        ({"kind": "rotation", "params": {**ROTATION["params"], "defensive": "D"}},
         {"max_weight": 0.5}, r"strategies\.s\.params\.defensive \(D: .*limits\.max_weight"),
        ({"kind": "linear", "params": {**LINEAR["params"], "max_weight": 0.3}},
         {"max_weight": 0.2}, r"strategies\.s\.params\.max_weight \(0\.3\) can exceed "
         r"limits\.max_weight \(0\.2\)"),
        (LINEAR, {"max_weight": 0.2}, r"strategies\.s\.params\.max_weight \(not set"),
        ({"kind": "linear", "params": {**LINEAR["params"], "max_weight": 0.1}},
         {"max_gross": 0.8}, r"strategies\.s\.params\.max_gross \(1\.0\) can exceed "
         r"limits\.max_gross \(0\.8\)"),
        (ROTATION, {"max_gross": 0.9}, r"strategies\.s\.kind \(rotation.*limits\.max_gross"),
    ],
)  # fmt: skip
def test_a_strategy_that_can_exceed_a_limit_is_refused_at_load(strategy, limits, message):
    with pytest.raises(ConfigError, match=message):
        parse_settings({"strategies": {"s": strategy}, "limits": limits})


def test_strategies_within_the_limits_load():
    fits = parse_settings({
        "strategies": {"s": ROTATION,
                       "t": {"kind": "linear", "params": {**LINEAR["params"], "max_weight": 0.3}}},
        "live": {"max_weight": 0.34},
    })  # fmt: skip
    assert fits.limits.max_weight == 0.34
    # the older key is the limit a strategy must fit too, and the message names it
    with pytest.raises(ConfigError, match=r"can exceed live\.max_weight \(0\.2\)"):
        parse_settings({"strategies": {"s": ROTATION}, "live": {"max_weight": 0.2}})
    default = load_settings(DEFAULT_CONFIG)  # the packaged strategies fit the packaged limits
    assert default.limits.max_weight == 1.0


def test_allocations_default_to_equal_shares_of_what_is_left():
    three = parse_settings({"strategies": {"a": ROTATION, "b": ROTATION, "c": ROTATION}})
    assert [s.allocation for s in three.strategies.values()] == pytest.approx([1 / 3] * 3)
    some = parse_settings({"strategies": {"a": {**ROTATION, "allocation": 0.5}, "b": ROTATION,
                                          "c": ROTATION}})  # fmt: skip
    assert [s.allocation for s in some.strategies.values()] == pytest.approx([0.5, 0.25, 0.25])
    default = load_settings(DEFAULT_CONFIG)
    assert {n: s.allocation for n, s in default.strategies.items()} == {
        "multi_factor": 0.6, "etf_rotation": 0.4,
    }  # fmt: skip
    # the dump holds the allocations in effect and loads again
    assert parse_settings(three.model_dump(mode="json")) == three


@pytest.mark.parametrize(
    ("allocations", "message"),
    [
        (
            {"a": 0.7, "b": 0.4},
            r"allocations sum to 1\.1, above 1 .*strategies\.a\.allocation "
            r"\(0\.7\), strategies\.b\.allocation \(0\.4\)",
        ),
        (
            {"a": 1.0, "b": None},
            r"strategies\.a\.allocation \(1\) take the whole account: "
            r"nothing is left for strategies\.b",
        ),
        ({"a": 0.0, "b": 0.5}, r"strategies\.a\.allocation: Input should be greater than 0"),
        ({"a": 1.5, "b": None}, r"strategies\.a\.allocation: Input should be less than or"),
    ],
)
def test_allocations_above_the_account_are_refused_at_load(allocations, message):
    strategies = {
        n: ROTATION if a is None else {**ROTATION, "allocation": a} for n, a in allocations.items()
    }
    with pytest.raises(ConfigError, match=message):
        parse_settings({"strategies": strategies})
