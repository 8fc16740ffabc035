"""How a backtest fills and charges: fill mode, commission, slippage, volume cap, lot size."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from qpipe.calendars import DEFAULT_SESSIONS_PER_YEAR
from qpipe.rulebook.costs import CostModel

FillMode = Literal["next_open", "next_close", "close"]


class BacktestConfig(BaseModel):
    """Engine settings (see ``DESIGN.md`` section 4).

    - ``fill``: ``next_open`` (default; a decision at the close of ``t`` fills at the open of
      ``t + 1``), ``next_close`` (the close of ``t + 1``) or ``close`` (the close of ``t``
      itself: a market-on-close order sent minutes before the close).
    - ``commission_bps``: fee rate on traded notional, in basis points (10 = 0.1%), paid from
      cash on top of the notional; ``min_commission``: the least fee of an order (currency).
      An order whose fee would exceed its notional is not made (reported ``skipped``).
    - ``slippage_bps``: the fill price moves this much against the trader.
    - ``participation``: at most this fraction of the volume known before the fill session
      per order (None: no cap): the volume of the last session complete before it (the
      decision session for ``next_open`` and ``next_close``, the session before for
      ``close``), in post-split shares on an ex-date. No volume there (a halt, or the first
      session of a ``close`` backtest) means no room. The rest is reported unfilled.
    - ``lot_size``: whole lots of this many shares (None: fractional shares).
    - ``min_trade_value``: an order worth less at its fill price is not made (currency;
      reported ``skipped``); ``cash_buffer``: a fraction of the portfolio kept in cash (out
      of the targets and out of what the buys may spend). The sizing is
      :mod:`qpipe.rulebook.sizing`, the live trader's.
    - ``max_weight``, ``max_gross``, ``max_order_notional``, ``max_turnover``: the pre-trade
      limits of ``limits:`` (None: no limit). A session whose orders live would refuse
      (:func:`qpipe.rulebook.limits.refusal`) trades nothing of them, as live; the daily
      columns ``refused``, ``refused_limit`` and ``refused_notional`` report it.
    - ``initial_cash``: the starting portfolio, all cash.
    - ``periods_per_year``: sessions per year that annualise the result's metrics (the
      calendar's :attr:`~qpipe.calendars.TradingCalendar.sessions_per_year`; the runner
      passes the configured calendar's).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    fill: FillMode = "next_open"
    commission_bps: float = Field(0.0, ge=0)
    min_commission: float = Field(0.0, ge=0)
    slippage_bps: float = Field(0.0, ge=0)
    participation: float | None = Field(None, gt=0, le=1)
    lot_size: float | None = Field(None, gt=0)
    min_trade_value: float = Field(0.0, ge=0)
    cash_buffer: float = Field(0.0, ge=0, lt=1)
    max_weight: float | None = Field(None, gt=0)
    max_gross: float | None = Field(None, gt=0)
    max_order_notional: float | None = Field(None, gt=0)
    max_turnover: float | None = Field(None, gt=0)
    initial_cash: float = Field(1_000_000.0, gt=0)
    periods_per_year: float = Field(DEFAULT_SESSIONS_PER_YEAR, gt=0)

    @property
    def commission_rate(self) -> float:
        return self.commission_bps / 1e4

    @property
    def slippage_rate(self) -> float:
        return self.slippage_bps / 1e4

    @property
    def costs(self) -> CostModel:
        """The cost model of these settings (the live trader sizes its orders with it)."""
        return CostModel(self.commission_rate, self.min_commission, self.slippage_rate)
