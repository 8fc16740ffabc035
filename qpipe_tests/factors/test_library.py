"""The whole factor library, config expressions included: no look-ahead, names, loading."""

from __future__ import annotations

import sys

import pandas as pd
import pytest

from qpipe.errors import ConfigError
from qpipe.factors.factory import library_for, selected_names
from qpipe.factors.lookahead import lookahead_violations
from qpipe.settings import FactorsConfig
from qpipe_tests.factors.test_panel import random_market

EXPRESSIONS = {
    "trend_20": "rank(ts_mean(close, 20) / close)",
    "quiet": "-ts_std(returns, 60)",
    "volume_rank": "ts_rank(volume, 10) * rank(adv20)",
    "gap": "(open - delay(close, 1)) / delay(close, 1) > 0 ? 1 : -1",
}


def test_every_factor_and_expression_is_point_in_time():
    library = library_for(FactorsConfig(expressions=EXPRESSIONS))
    assert len(library) >= 12 + 40 + len(EXPRESSIONS)
    market = random_market(n_dates=300, n_symbols=10, seed=3)
    dates = list(pd.DatetimeIndex(sorted(market.bars["date"].unique()))[[-1, -30]])
    assert lookahead_violations(market, library, library.names(), dates) == {}


def test_duplicate_names_fail_at_load():
    with pytest.raises(ConfigError, match="two factors are named 'mom_12_1'"):
        library_for(FactorsConfig(expressions={"mom_12_1": "close"}))


def test_bad_expression_fails_at_load_with_position():
    with pytest.raises(ConfigError) as err:
        library_for(FactorsConfig(expressions={"bad": "rank(ts_mean(close, 20) / clos)"}))
    assert "clos" in str(err.value) and "close" in str(err.value)


def test_selected_names_are_checked():
    library = library_for(FactorsConfig())
    assert selected_names(FactorsConfig(names=["vol_20"]), library) == ["vol_20"]
    with pytest.raises(ConfigError, match=r"factors\.names: unknown factors: nope"):
        selected_names(FactorsConfig(names=["vol_20", "nope"]), library)


def test_user_module_factors_join_the_library(tmp_path, monkeypatch):
    (tmp_path / "my_factors_mod.py").write_text(
        "from qpipe.factors.operators import ts_mean\n"
        "from qpipe.factors.user import factor\n"
        "@factor('volume_surge_test', lookback=19, inputs=('volume',))\n"
        "def volume_surge(x):\n"
        "    '''Volume over its 20-session mean.'''\n"
        "    return x.volume / ts_mean(x.volume, 20)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        library = library_for(FactorsConfig(modules=["my_factors_mod"]))
        assert library["volume_surge_test"].lookback == 19
        market = random_market(n_dates=220, n_symbols=4)
        dates = list(pd.DatetimeIndex(sorted(market.bars["date"].unique()))[[-1]])
        assert lookahead_violations(market, library, ["volume_surge_test"], dates) == {}
    finally:
        from qpipe.factors.user import USER

        USER._factors.pop("volume_surge_test", None)
        sys.modules.pop("my_factors_mod", None)
    with pytest.raises(ConfigError, match="cannot import 'no_such_module'"):
        library_for(FactorsConfig(modules=["no_such_module"]))
