"""Configuration: one declarative YAML file validated with pydantic.

The packaged ``default_config.yaml`` is used unless a file is given with ``--config`` or the
``QPIPE_CONFIG`` environment variable. A user file only needs the keys it changes; a wrong key
or value raises :class:`~qpipe.errors.ConfigError` naming the key and the problem. Relative
paths in the file are resolved against the file's own directory.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SerializerFunctionWrapHandler,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_serializer,
    model_validator,
)

from qpipe.calendars import SUPPORTED_EXCHANGES
from qpipe.errors import ConfigError

DEFAULT_CONFIG = Path(__file__).with_name("default_config.yaml")
CONFIG_ENV = "QPIPE_CONFIG"
DATA_ENV = "QPIPE_DATA"


class StrictModel(BaseModel):
    """A config section: unknown keys are errors, values are validated on assignment too."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)


class UniverseConfig(StrictModel):
    """Which instruments to keep: ``symbols`` (None = all the source offers) minus ``exclude``."""

    symbols: list[str] | None = None
    exclude: list[str] = Field(default_factory=list)
    kinds: list[Literal["stock", "etf"]] = Field(default_factory=lambda: ["stock", "etf"])


class CalendarConfig(StrictModel):
    """Trading calendar and the first session of the partitions (default: the source's start)."""

    exchange: str = "XNYS"
    start: dt.date | None = None
    end: dt.date | None = None
    """Last session of the partitions; None: open-ended (the source's last day if it has one)."""
    sync_delay_minutes: int = Field(60, ge=0, le=24 * 60)
    """Minutes after a session's close before the nightly sync treats it as final."""

    @field_validator("exchange")
    @classmethod
    def _known_exchange(cls, value: str) -> str:
        if value not in SUPPORTED_EXCHANGES:
            raise ValueError(f"must be one of {', '.join(SUPPORTED_EXCHANGES)}, got {value!r}")
        return value


class SyntheticSourceConfig(StrictModel):
    """A seeded synthetic market: stocks in sectors, ETFs, listings, corporate actions, halts."""

    seed: int = 7
    n_stocks: int = Field(200, ge=1, le=20_000)
    n_sectors: int = Field(8, ge=1, le=20)
    n_etfs: int = Field(12, ge=0, le=40)
    start: dt.date = dt.date(2015, 1, 2)
    """First session of the synthetic history (the market is generated forward from here)."""
    momentum_strength: float = Field(1.0, ge=0.0, le=10.0)
    """Scale of the planted persistent drift that gives 12-1 momentum a positive IC (0 = none)."""


class ColumnMap(StrictModel):
    """Names of the columns in the user's files (only ``date`` and ``close`` are required)."""

    date: str = "date"
    symbol: str = "symbol"
    open: str | None = "open"
    high: str | None = "high"
    low: str | None = "low"
    close: str = "close"
    volume: str | None = "volume"
    adj_close: str | None = None
    """If set, splits and dividends are derived from the ratio ``adj_close / close``."""
    delisted: str | None = None
    """If set, a column holding the symbol's delisting date (its last trading session) on its
    rows (empty cells allowed; the dates given for one symbol must agree)."""


class FilesSourceConfig(StrictModel):
    """The user's own CSV or Parquet files: one long table, or one file per symbol."""

    path: Path
    layout: Literal["long", "per_symbol"] = "long"
    format: Literal["auto", "csv", "parquet"] = "auto"
    columns: ColumnMap = Field(default_factory=ColumnMap)
    date_format: str | None = None
    """``strptime`` format of the date columns (of every file of the source); None lets pandas
    parse ISO dates."""
    delimiter: str = Field(",", min_length=1, max_length=1)
    """Field delimiter of CSV files (e.g. ``";"`` or ``"\\t"``)."""
    actions: Path | None = None
    """A CSV or Parquet file of corporate actions with columns ``date`` (ex-date), ``symbol``,
    ``split_ratio`` (new shares per old, empty = 1) and ``dividend`` (cash per share, empty =
    0). For the symbols it names it replaces the actions derived from ``columns.adj_close``."""
    instruments: Path | None = None
    """A CSV or Parquet file with a ``symbol`` column, a ``delisted`` column (the last session
    the symbol trades; empty: not delisted) and optionally ``kind`` (stock or etf) and
    ``sector``."""


class SampleSourceConfig(StrictModel):
    """Real daily bars for AAPL, IBM, MSFT, GOOG and FB (2000-2013) shipped with qpipe."""

    path: Path | None = None
    """Override the packaged file (same columns as ``wiki_prices_5.csv.gz``)."""


class IBSourceConfig(StrictModel):
    """Daily bars from Interactive Brokers (TWS or IB Gateway at ``live.host:live.port``)."""

    stocks: list[str] = Field(default_factory=list)
    etfs: list[str] = Field(default_factory=list)
    sectors: dict[str, str] = Field(default_factory=dict)
    """Sector per symbol (optional)."""
    start: dt.date
    """First session to fetch; IB keeps years of daily bars, paced at 60 requests / 10 min."""
    client_id: int = Field(2, ge=0)
    """API client id of the data connection (not the trading one)."""

    @model_validator(mode="after")
    def _some_symbols(self) -> IBSourceConfig:
        if not self.stocks and not self.etfs:
            raise ValueError("the ib source needs symbols in 'stocks' or 'etfs'")
        both = sorted(set(self.stocks) & set(self.etfs))
        if both:
            raise ValueError(f"symbols listed as both stock and etf: {', '.join(both)}")
        return self


class DataConfig(StrictModel):
    """Where bars come from."""

    source: Literal["synthetic", "sample", "files", "ib"] = "synthetic"
    synthetic: SyntheticSourceConfig = Field(default_factory=SyntheticSourceConfig)
    sample: SampleSourceConfig = Field(default_factory=SampleSourceConfig)
    files: FilesSourceConfig | None = None
    ib: IBSourceConfig | None = None

    @model_validator(mode="after")
    def _source_needs_section(self) -> DataConfig:
        if self.source == "files" and self.files is None:
            raise ValueError("source 'files' needs a 'files' section with at least 'path'")
        if self.source == "ib" and self.ib is None:
            raise ValueError("source 'ib' needs an 'ib' section with 'start' and the symbols")
        return self


class FactorsConfig(StrictModel):
    """Which factors to compute (None = the whole library) and user expression factors."""

    names: list[str] | None = None
    expressions: dict[str, str] = Field(default_factory=dict)
    """User factors as expressions over the operators, e.g. ``rank(ts_mean(close, 20) / close)``."""
    modules: list[str] = Field(default_factory=list)
    """Python modules to import; factors they register with ``@qpipe.factors.factor`` join in."""


def _nonzero(weight: float) -> float:
    if weight == 0:
        raise ValueError("a weight of 0 leaves the factor out of the score: remove the factor")
    return weight


Weight = Annotated[float, Field(strict=True, allow_inf_nan=False), AfterValidator(_nonzero)]
"""A non-zero number (an int is fine; a string, a bool, NaN or 0 is not)."""
Rebalance = Literal["daily", "weekly", "monthly"]


class StrategySection(StrictModel):
    """A section of a strategy's parameters. A key that the strategy would ignore given the
    other keys (``unused``) is refused when the file gives it, naming the key and why; a
    default the file does not give is never refused (pydantic validates only given values),
    and dumps leave unused keys out, so a dump is the configuration in effect and loads
    again."""

    @classmethod
    def unused(cls, values: Mapping[str, Any]) -> dict[str, str]:
        """The keys ``values`` make unused, with the reason. A rule reads only keys declared
        before its own (pydantic validates fields in declaration order) and judges nothing
        when one of them is missing (it failed validation)."""
        return {}

    @field_validator("*")
    @classmethod
    def _refuse_unused(cls, value: Any, info: ValidationInfo) -> Any:
        reason = cls.unused(info.data).get(info.field_name or "")
        if reason:
            raise ValueError(reason)
        return value

    @model_serializer(mode="wrap")
    def _in_effect(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data = handler(self)
        for key in self.unused(self.__dict__):
            data.pop(key, None)
        return data


def _given_and_none(values: Mapping[str, Any], *keys: str) -> bool:
    """Every one of ``keys`` was validated and is None."""
    return all(key in values and values[key] is None for key in keys)


class StrategyUniverse(StrategySection):
    """What a strategy trades: ``symbols`` (in order), else every instrument of ``kinds``."""

    symbols: list[str] | None = Field(None, min_length=1)
    kinds: list[Literal["stock", "etf"]] = Field(default_factory=lambda: ["stock"], min_length=1)

    @classmethod
    def unused(cls, values: Mapping[str, Any]) -> dict[str, str]:
        if values.get("symbols") is not None:
            return {"kinds": "ignored with symbols (the universe is exactly the symbols)"}
        return {}


class StopLossConfig(StrictModel):
    """Exit a position that falls ``stop`` (a fraction) below its entry (or its peak since
    entry when ``trailing``)."""

    stop: float = Field(gt=0, lt=1)
    trailing: bool = False


class CircuitBreakerConfig(StrategySection):
    """Portfolio circuit breaker thresholds, fractions of NAV (None disables a trigger, at
    least one stays). ``reduce_to`` and ``recover_drawdown`` belong to ``reduce_drawdown``,
    ``cooldown_sessions`` to ``halt_drawdown`` and ``max_daily_loss``."""

    reduce_drawdown: float | None = Field(0.10, gt=0, lt=1)
    reduce_to: float = Field(0.5, gt=0, lt=1)
    halt_drawdown: float | None = Field(0.20, gt=0, lt=1)
    max_daily_loss: float | None = Field(0.05, gt=0, lt=1)
    recover_drawdown: float = Field(0.05, ge=0, lt=1)
    cooldown_sessions: int = Field(5, ge=1)

    @classmethod
    def unused(cls, values: Mapping[str, Any]) -> dict[str, str]:
        out = {}
        if _given_and_none(values, "reduce_drawdown"):
            why = "ignored with reduce_drawdown null (it belongs to the reduce trigger)"
            out |= {"reduce_to": why, "recover_drawdown": why}
        if _given_and_none(values, "halt_drawdown", "max_daily_loss"):
            out["cooldown_sessions"] = (
                "ignored with halt_drawdown and max_daily_loss null (it belongs to the halt)"
            )
        return out

    @model_validator(mode="after")
    def _some_trigger(self) -> CircuitBreakerConfig:
        triggers = (self.reduce_drawdown, self.halt_drawdown, self.max_daily_loss)
        if all(t is None for t in triggers):
            raise ValueError(
                "reduce_drawdown, halt_drawdown and max_daily_loss are all null: the breaker "
                "would never act (leave circuit_breaker out instead)"
            )
        return self


class RiskParams(StrategySection):
    """Parameters shared by every strategy kind."""

    rebalance: Rebalance = "monthly"
    stop_loss: StopLossConfig | None = None
    circuit_breaker: CircuitBreakerConfig | None = None


class LinearParams(RiskParams):
    """Multi-factor linear weighting (``kind: linear``)."""

    factors: dict[str, Weight] = Field(min_length=1)
    """Factor name -> signed, non-zero weight."""
    universe: StrategyUniverse = Field(default_factory=StrategyUniverse)
    winsorize: float = Field(0.01, ge=0, le=0.5)
    min_factors: int = Field(1, ge=1)
    """Least number of factors a name needs that date (at most the number of factors)."""
    top_k: int | None = Field(None, ge=1)
    top_quantile: float | None = Field(None, gt=0, le=1)
    threshold: float | None = Field(None, ge=0)
    """Keep only names whose combined z-score is at least this."""
    hold_band: float = Field(0, ge=0)
    """Extra ranks (with ``top_k``, an integer) or fraction of the names (with
    ``top_quantile``, at most 1) within which a held name stays; only with one of them."""
    weighting: Literal["equal", "score", "inverse_vol"] = "equal"
    vol_window: int = Field(60, ge=2)
    """Sessions of daily returns of the volatility (only with ``weighting: inverse_vol``)."""
    max_weight: float | None = Field(None, gt=0, le=1)
    max_gross: float = Field(1.0, gt=0, le=1)
    """At most 1: weights are long-only fractions of the portfolio (no leverage)."""
    min_change: float = Field(0.0, ge=0, lt=1)
    """Keep the previous weight of a name whose weight would move by less than this, as far
    as ``max_weight`` and ``max_gross`` allow (exits always trade)."""

    @classmethod
    def unused(cls, values: Mapping[str, Any]) -> dict[str, str]:
        out = super().unused(values)
        if _given_and_none(values, "top_k", "top_quantile"):
            out["hold_band"] = "ignored without top_k or top_quantile (it widens the selection)"
        if "weighting" in values and values["weighting"] != "inverse_vol":
            out["vol_window"] = "ignored unless weighting is inverse_vol"
        return out

    @field_validator("min_factors")
    @classmethod
    def _at_most_the_factors(cls, value: int, info: ValidationInfo) -> int:
        factors = info.data.get("factors")
        if factors is not None and value > len(factors):
            raise ValueError(
                f"{value} is more than the {len(factors)} factor(s): every score would be NaN"
            )
        return value

    @field_validator("hold_band")
    @classmethod
    def _band_fits_the_selection(cls, value: float, info: ValidationInfo) -> float:
        if info.data.get("top_k") is not None and value != int(value):
            raise ValueError("with top_k, a number of ranks (an integer)")
        if info.data.get("top_quantile") is not None and value > 1:
            raise ValueError("with top_quantile, a fraction of the names (at most 1)")
        return value

    @model_validator(mode="after")
    def _one_selection(self) -> LinearParams:
        if self.top_k is not None and self.top_quantile is not None:
            raise ValueError("give top_k or top_quantile, not both")
        return self


class RotationParams(RiskParams):
    """Momentum rotation over ETFs (``kind: rotation``)."""

    symbols: list[str] = Field(min_length=1)
    defensive: str | None = None
    """Held in place of a selected ETF whose return is below ``min_return``; None: cash."""
    lookback: int = Field(126, ge=1)
    top_k: int = Field(3, ge=1)
    min_return: float = Field(0.0, gt=-1, allow_inf_nan=False)
    """Above -1 and finite: a return is always above -1 (-100%), so at -1 or below the filter
    and the defensive ETF would never act."""


Allocation = Annotated[float | None, Field(None, gt=0, le=1, allow_inf_nan=False)]
"""A strategy's share of the account (a fraction in (0, 1]); None: an equal share of what
the strategies that give one leave (set at load)."""


class LinearStrategyConfig(StrictModel):
    kind: Literal["linear"]
    allocation: Allocation
    params: LinearParams


class RotationStrategyConfig(StrictModel):
    kind: Literal["rotation"]
    allocation: Allocation
    params: RotationParams


StrategyConfig = Annotated[
    LinearStrategyConfig | RotationStrategyConfig, Field(discriminator="kind")
]
"""One strategy: its kind and the parameters that kind takes."""

STRATEGY_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class BacktestSettings(StrictModel):
    """How backtests fill and charge (``qpipe.backtest.config.BacktestConfig``) and what they
    are compared with: ``benchmark`` is a symbol (its total return) or ``equal_weight`` (the
    strategy's universe, equally weighted, rebalanced daily)."""

    fill: Literal["next_open", "next_close", "close"] = "next_open"
    commission_bps: float = Field(10.0, ge=0)
    min_commission: float = Field(0.0, ge=0)
    slippage_bps: float = Field(5.0, ge=0)
    participation: float | None = Field(None, gt=0, le=1)
    lot_size: float | None = Field(None, gt=0)
    """Alias of ``limits.lot_size`` (set to it at load)."""
    initial_cash: float = Field(1_000_000.0, gt=0)
    benchmark: str = "equal_weight"
    _sizing: tuple[float, float] = PrivateAttr((0.0, 0.0))
    _limits: dict[str, float | None] = PrivateAttr(default_factory=dict)

    @property
    def sizing_limits(self) -> tuple[float, float]:
        """``(min_trade_value, cash_buffer)`` of ``limits:``, which the backtest sizes its
        orders with as live does (set at load; none for a section built on its own)."""
        return self._sizing

    @property
    def refusal_limits(self) -> dict[str, float | None]:
        """``max_weight``, ``max_gross``, ``max_order_notional`` and ``max_turnover`` of
        ``limits:``, under which the backtest refuses a session's rebalance as live does (set
        at load; none for a section built on its own)."""
        return dict(self._limits)


class LimitsConfig(StrictModel):
    """Pre-trade limits, configured once (``limits:``): the live trader refuses a rebalance
    that breaks one, and sizes its orders with the sizing ones
    (:mod:`qpipe.rulebook.sizing`).

    - ``max_weight``: the largest absolute target weight of one name (fraction of the
      sizing value). Alias: ``live.max_weight``.
    - ``max_gross``: the largest sum of absolute target weights.
    - ``max_turnover``: the largest traded notional of one rebalance, as a multiple of the
      net liquidation value (2 = sell everything and buy it all back).
    - ``max_order_notional``: the largest notional of one order (currency; null, the
      default: no cap). Alias: ``live.max_order_notional``.
    - ``min_trade_value``: an order worth less (currency, at its expected fill price) is not
      made.
    - ``lot_size``: whole lots of this many shares; null: fractional shares in the backtest,
      whole shares (lots of 1) live. Alias: ``backtest.lot_size``.
    - ``cash_buffer``: a fraction of the sizing value kept in cash: out of the targets, and
      out of the cash the buys may spend.

    A strategy whose construction can hold a name above ``max_weight`` or a gross above
    ``max_gross`` is an error at load naming both keys."""

    max_weight: float = Field(1.0, gt=0, le=1)
    max_gross: float = Field(1.0, gt=0, le=1)
    max_turnover: float = Field(2.0, gt=0)
    max_order_notional: float | None = Field(None, gt=0)
    min_trade_value: float = Field(0.0, ge=0)
    lot_size: float | None = Field(None, gt=0)
    cash_buffer: float = Field(0.0, ge=0, lt=1)


_LIMIT_ALIASES = (
    ("lot_size", "backtest", "lot_size"),
    ("max_weight", "live", "max_weight"),
    ("max_order_notional", "live", "max_order_notional"),
)
"""(``limits`` key, section, key of that section): the older keys, kept as aliases."""


class LiveConfig(StrictModel):
    """Live trading at the close. Safe by default: paper broker, dry run, no live ports."""

    broker: Literal["paper", "ib"] = "paper"
    dry_run: bool = True
    host: str = "127.0.0.1"
    port: int = Field(7497, ge=1, le=65535)
    client_id: int = Field(1, ge=0)
    currency: str = Field("USD", pattern=r"^[A-Z]{3}$")
    market_data_type: int = Field(1, ge=1, le=4)
    """IB market data: 1 live, 2 frozen, 3 delayed, 4 delayed frozen."""
    allow_live_ports: bool = False
    accounts: list[str] = Field(default_factory=list)
    max_order_notional: float | None = Field(None, gt=0)
    """Alias of ``limits.max_order_notional`` (set to it at load)."""
    max_weight: float | None = Field(None, gt=0, le=1)
    """Alias of ``limits.max_weight`` (set to it at load)."""
    minutes_before_close: int = Field(20, ge=15, le=120)
    """When the rebalance runs; at least 15: IB wants market-on-close orders in 15 minutes
    before the close (NYSE takes them until 10 minutes before, no cancel after)."""


class Settings(StrictModel):
    """The whole configuration file."""

    universe: UniverseConfig = Field(default_factory=UniverseConfig)
    calendar: CalendarConfig = Field(default_factory=CalendarConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    factors: FactorsConfig = Field(default_factory=FactorsConfig)
    strategies: dict[str, StrategyConfig] = Field(default_factory=dict)
    backtest: BacktestSettings = Field(default_factory=BacktestSettings)
    live: LiveConfig = Field(default_factory=LiveConfig)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    _limit_keys: dict[str, str] = PrivateAttr(default_factory=dict)

    def limit_key(self, key: str) -> str:
        """How the file names the limit ``key``: ``limits.<key>``, or the older key given
        in its place (an error message names the key the user wrote)."""
        return self._limit_keys.get(key, f"limits.{key}")

    @model_validator(mode="after")
    def _one_set_of_limits(self) -> Settings:
        """The older keys are aliases of ``limits``: one given sets the limit, both given
        must agree; after this, both hold the limit."""
        for key, section, old in _LIMIT_ALIASES:
            sub = getattr(self, section)
            if old in sub.model_fields_set and getattr(sub, old) is not None:
                value = getattr(sub, old)
                if key not in self.limits.model_fields_set:
                    self._limit_keys[key] = f"{section}.{old}"
                if key in self.limits.model_fields_set and getattr(self.limits, key) != value:
                    raise ValueError(
                        f"limits.{key} ({getattr(self.limits, key)}) and {section}.{old} "
                        f"({value}) disagree: give one ({section}.{old} is its older name)"
                    )
                setattr(self.limits, key, value)
            setattr(sub, old, getattr(self.limits, key))
        self.backtest._sizing = (self.limits.min_trade_value, self.limits.cash_buffer)
        self.backtest._limits = self.limits.model_dump(
            include={"max_weight", "max_gross", "max_order_notional", "max_turnover"}
        )
        return self

    @model_validator(mode="after")
    def _allocations(self) -> Settings:
        """Each strategy's ``allocation`` (a fraction of the account) is set: the strategies
        that give none share equally what the others leave (with none given, ``1 / number
        of strategies`` each); the allocations sum to at most 1."""
        given = {n: s.allocation for n, s in self.strategies.items() if s.allocation is not None}
        total = sum(given.values())
        keys = ", ".join(f"strategies.{n}.allocation ({a:g})" for n, a in given.items())
        if total > 1 + 1e-9:
            raise ValueError(
                f"the strategies' allocations sum to {total:g}, above 1 (the whole account): {keys}"
            )
        rest = [n for n, s in self.strategies.items() if s.allocation is None]
        if rest:
            share = (1.0 - total) / len(rest)
            if share <= 1e-9:
                raise ValueError(
                    f"{keys} take the whole account: nothing is left for "
                    + ", ".join(f"strategies.{n}" for n in rest)
                    + " (give each an allocation)"
                )
            for name in rest:
                self.strategies[name].allocation = share
        return self

    @model_validator(mode="after")
    def _strategies_fit_the_limits(self) -> Settings:
        """A strategy whose construction can hold one name above ``limits.max_weight`` or a
        gross above ``limits.max_gross`` would be refused live: an error at load."""
        limits = self.limits
        for name, strategy in self.strategies.items():
            key = f"strategies.{name}.params"
            p = strategy.params
            if isinstance(p, LinearParams):
                if p.max_weight is not None:
                    weight, why = p.max_weight, f"{key}.max_weight ({p.max_weight})"
                else:
                    weight = p.max_gross
                    why = (f"{key}.max_weight (not set: one name can take the gross "
                           f"{p.max_gross})")  # fmt: skip
                gross, gross_why = p.max_gross, f"{key}.max_gross ({p.max_gross})"
            else:
                ranked = len([s for s in p.symbols if s != p.defensive])
                if p.defensive is not None:
                    weight = 1.0
                    why = (f"{key}.defensive ({p.defensive}: it takes every slot whose ETF is "
                           "weak, up to the whole book)")  # fmt: skip
                else:
                    weight = 1.0 / max(1, min(p.top_k, ranked))
                    why = f"{key}.top_k ({p.top_k}: equal weights of {weight:.4f})"
                gross, gross_why = 1.0, f"strategies.{name}.kind (rotation: fully invested)"
            if weight > limits.max_weight + 1e-12:
                raise ValueError(
                    f"strategy {name}: {why} can exceed {self.limit_key('max_weight')} "
                    f"({limits.max_weight}); every such rebalance would be refused live"
                )
            if gross > limits.max_gross + 1e-12:
                raise ValueError(
                    f"strategy {name}: {gross_why} can exceed limits.max_gross "
                    f"({limits.max_gross}); every such rebalance would be refused live"
                )
        return self

    @field_validator("strategies")
    @classmethod
    def _strategy_names(cls, value: dict[str, Any]) -> dict[str, Any]:
        for name in value:
            if not STRATEGY_NAME.match(name):
                raise ValueError(
                    f"strategy name {name!r} must be letters, digits and _ (not starting "
                    "with a digit): it names a lake table and a Dagster asset"
                )
        return value

    @model_validator(mode="after")
    def _files_need_start(self) -> Settings:
        if self.data.source == "files" and self.calendar.start is None:
            raise ValueError("calendar.start is required with the files source")
        return self

    @model_validator(mode="after")
    def _fill_price_exists(self) -> Settings:
        files = self.data.files
        if (
            self.data.source == "files"
            and files is not None
            and files.columns.open is None
            and self.backtest.fill == "next_open"
        ):
            raise ValueError(
                "backtest.fill 'next_open' fills orders at the next session's open, but "
                "data.files.columns.open is null (the files have no open prices), so no order "
                "would ever fill: set backtest.fill to next_close or close"
            )
        return self


def _format_error(source: str, exc: ValidationError) -> str:
    lines = [f"invalid configuration in {source}:"]
    for err in exc.errors():
        loc = list(err["loc"])
        if len(loc) > 2 and loc[0] == "strategies" and loc[2] in ("linear", "rotation"):
            del loc[2]  # the discriminator's tag: the kind is already in the file
        msg = err["msg"]
        if err["type"] == "union_tag_invalid":
            loc.append(err.get("ctx", {}).get("discriminator", "").strip("'") or "kind")
            msg = f"must be one of {err['ctx']['expected_tags']}, got {err['ctx']['tag']!r}"
        key = ".".join(str(p) for p in loc) or "(top level)"
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        if not loc and err["type"] == "value_error":
            lines.append(f"  {err['ctx']['error']}")  # a check across sections names its keys
            continue
        lines.append(f"  {key}: {msg}")
    return "\n".join(lines)


def _resolve_paths(raw: dict[str, Any], base: Path) -> None:
    data = raw.get("data")
    if not isinstance(data, dict):
        return
    for section, keys in (("files", ("path", "actions", "instruments")), ("sample", ("path",))):
        sub = data.get(section)
        if not isinstance(sub, dict):
            continue
        for key in keys:
            if isinstance(sub.get(key), str):
                p = Path(sub[key]).expanduser()
                sub[key] = str(p if p.is_absolute() else (base / p))


def parse_settings(raw: Any, source: str = "<config>", base: Path | None = None) -> Settings:
    """Validate an already-parsed YAML document; ``source`` names it in error messages."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"invalid configuration in {source}: the top level must be a mapping")
    if base is not None:
        _resolve_paths(raw, base)
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_format_error(source, exc)) from None


def load_settings(path: str | os.PathLike[str] | None = None) -> Settings:
    """Load ``path``, else ``$QPIPE_CONFIG``, else the packaged default configuration."""
    chosen = path or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG
    p = Path(chosen).expanduser()
    try:
        text = p.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read configuration file {p}: {exc.strerror}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML in {p}: {exc}") from None
    return parse_settings(raw, source=str(p), base=p.resolve().parent)


def data_dir() -> Path:
    """The data directory: ``$QPIPE_DATA`` if set, else ``./data`` (absolute path)."""
    return Path(os.environ.get(DATA_ENV) or "data").expanduser().resolve()
