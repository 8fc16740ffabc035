"""The drift report: every paper or live rebalance in the journal against what the backtest
engine does for that session from the same starting positions.

For each strategy's rebalance of a session that sent orders (journal mode ``execute``; dry
runs are never compared), the replay takes the journal's snapshot of the first such run (the
account's shares, cash and net liquidation value, and the strategy's target weights after
its risk rules), and runs :class:`~qpipe.backtest.engine.BacktestEngine` in ``close`` fill
mode (a market-on-close order) with the configured costs and sizing limits on a two-session
panel of the lake's closes: the session before (marks only; a name without a close there is
marked at its last close in the :data:`MARK_DAYS` calendar days before) and the session
itself, where it trades the targets. Corporate actions of the session are not replayed: the
snapshot is the account after them.

Per order (:data:`ORDER_COLUMNS`): the intended shares (the live plan) and the shares, price
and fees filled (all runs of the session, signed: buys > 0), the engine's shares, price and
fee, and the slippage and fee against the cost model (``fill_price`` of the quoted price,
``commission``; positive: the fill cost more than the model).

Per session and strategy (:data:`SESSION_COLUMNS`), in currency at the session's close
(the engine's marks): ``nav_live`` (the snapshot's cash and shares with the live fills),
``nav_engine``, ``nav_diff = nav_live - nav_engine`` and ``nav_diff_rel`` (over the
snapshot's net liquidation value), split exactly into

- ``fills``: on the names the live account traded, ``q_L (p_E - p_L) + (q_L - q_E)
  (mark - p_E)``: the fill price against the engine's (or, where the engine did not trade,
  the cost model's fill at the close) and a different quantity;
- ``missed_orders``: ``-q_E (mark - p_E)`` on the names the engine traded and the live
  account did not (not sent, killed, rejected, not filled);
- ``costs``: the engine's fees less the live fees;

with ``residual`` what is left (rounding). ``corporate_actions`` is the gap before the
session: the snapshot's shares and cash less what the engine carries from the end of the
account's previous journaled run (its snapshot and fills) through the corporate actions
with ex-dates since (shares times the split ratio, dividends per share in cash), on the
names with such actions and the cash, at the session's marks; 0 when no held name had one,
NULL for an account's first run (e.g. a broker that does not book a split shows here).
``start_diff`` is the snapshot's net liquidation
value less the same positions at the engine's marks (a live valuation on other prices, e.g.
a stale bar); ``cause`` names the components above :data:`TOLERANCE` of the NAV, largest
first (``none`` when there is none). ``tracking`` is the cumulative sum per strategy over
its sessions of ``nav_diff`` and ``corporate_actions`` over ``nav_start``. Missing values
are NULL in the ``live_drift`` table (:func:`write_drift`; the lake's ``symbol`` key holds
the strategy).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from qpipe.backtest.config import BacktestConfig
from qpipe.backtest.engine import BacktestEngine
from qpipe.backtest.runner import engine_config
from qpipe.calendars import TradingCalendar
from qpipe.data.adjustments import book_actions
from qpipe.data.lake import Lake
from qpipe.live.journal import Journal
from qpipe.live.trader import Limits
from qpipe.project import Project
from qpipe.rulebook.costs import commission, fill_price

TABLE = "live_drift"
TOLERANCE = 1e-9
"""A cause is named when its amount exceeds this fraction of the snapshot's NAV."""
MARK_DAYS = 30
"""Calendar days before a session searched for a held name's last close (its mark)."""
CAUSES = ("fills", "costs", "missed_orders")
SESSION_COLUMNS = [
    "date", "strategy", "broker", "run_id", "orders", "filled", "missed", "nav_start",
    "start_diff", "nav_live", "nav_engine", "nav_diff", "nav_diff_rel", "fills", "costs",
    "missed_orders", "residual", "corporate_actions", "cause", "tracking",
]  # fmt: skip
ORDER_COLUMNS = [
    "date", "strategy", "symbol", "intended", "quoted", "filled", "fill_price", "fee",
    "engine_quantity", "engine_price", "engine_fee", "expected_price", "slippage_vs_model",
    "fee_vs_model",
]  # fmt: skip


@dataclass(frozen=True)
class DriftReport:
    """Per session and strategy (:data:`SESSION_COLUMNS`) and per order
    (:data:`ORDER_COLUMNS`)."""

    sessions: pd.DataFrame
    orders: pd.DataFrame


def replay_config(costs: BacktestConfig, limits: Limits) -> BacktestConfig:
    """The engine settings a live session is replayed with: ``costs``' commission, minimum
    commission and slippage, the live sizing limits (lot size, minimum trade value, cash
    buffer), ``close`` fills and no participation cap (live orders have none)."""
    return costs.model_copy(
        update={
            "fill": "close", "participation": None, "lot_size": float(limits.lot_size),
            "min_trade_value": limits.min_trade_value, "cash_buffer": limits.cash_buffer,
        }
    )  # fmt: skip


def project_config(project: Project) -> BacktestConfig:
    """:func:`replay_config` of ``project``'s backtest costs and ``limits:``."""
    costs = engine_config(project.settings.backtest, project.calendar.sessions_per_year)
    return replay_config(costs, Limits.from_settings(project.settings.limits))


def compute_drift(
    journal: Journal,
    lake: Lake,
    calendar: TradingCalendar,
    config: BacktestConfig,
    strategy: str | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
) -> DriftReport:
    """The drift of every rebalance in ``journal`` that sent orders (``strategy``, sessions
    ``start`` to ``end``, inclusive, where given), replayed on ``lake``'s bars with
    ``config`` (:func:`replay_config`). Sessions sorted; ``tracking`` cumulates over the
    sessions selected."""
    snaps = journal.read("snapshot")
    if snaps.empty or "mode" not in snaps:
        return DriftReport(_empty(SESSION_COLUMNS), _empty(ORDER_COLUMNS))
    snaps = snaps.loc[snaps["mode"] == "execute"]
    snaps = snaps.assign(day=pd.to_datetime(snaps["session"]).dt.date)
    everything = snaps
    if strategy is not None:
        snaps = snaps.loc[snaps["strategy"] == strategy]
    if start is not None:
        snaps = snaps.loc[snaps["day"] >= start]
    if end is not None:
        snaps = snaps.loc[snaps["day"] <= end]
    if snaps.empty:
        return DriftReport(_empty(SESSION_COLUMNS), _empty(ORDER_COLUMNS))
    first_runs = snaps.drop_duplicates(["session", "strategy"])["run_id"]
    snaps = snaps.loc[snaps["run_id"].isin(set(first_runs))]
    fills = _stamped(journal.read("fills"))
    intended = _stamped(journal.read("intended"))
    carry = _carried(everything, fills, lake, set(first_runs))
    closes = _closes(lake, calendar, sorted(set(snaps["symbol"])), snaps["day"])
    engine = BacktestEngine(config)
    sessions, orders = [], []
    for run_id, snap in snaps.groupby("run_id", sort=False):
        row, order_rows = _replay(
            engine, config, snap, run_id, fills, intended, closes, calendar, carry.get(run_id)
        )
        sessions.append(row)
        orders.append(order_rows)
    frame = pd.DataFrame(sessions).sort_values(["date", "strategy"], ignore_index=True)
    frame["tracking"] = _tracking(frame)
    order_frame = pd.concat(orders, ignore_index=True) if orders else _empty(ORDER_COLUMNS)
    return DriftReport(frame[SESSION_COLUMNS], order_frame[ORDER_COLUMNS])


def _tracking(sessions: pd.DataFrame) -> pd.Series:
    """Per strategy, the running sum over its sessions of the NAV difference and the
    corporate actions' difference (none when unknown), over the starting NAV."""
    gap = sessions["nav_diff"] + sessions["corporate_actions"].fillna(0.0)
    return (gap / sessions["nav_start"]).groupby(sessions["strategy"]).cumsum()


def _sizing(row: pd.Series) -> tuple[float, float]:
    """The cash and value a snapshot's rebalance was sized with: the strategy's sleeve
    (``sizing_cash``, ``sizing_value``: its allocation of the account) where the snapshot
    has them, else the account's cash and net liquidation."""
    cash = row.get("sizing_cash", np.nan)
    value = row.get("sizing_value", np.nan)
    if pd.notna(cash) and pd.notna(value):
        return float(cash), float(value)
    return float(row["cash"]), float(row["net_liquidation"])


def _sleeved(row: pd.Series) -> bool:
    """Whether a snapshot's rebalance traded a sleeve (an allocation of the account)."""
    return bool(pd.notna(row.get("sizing_value", np.nan)))


def _carried(
    snaps: pd.DataFrame, fills: pd.DataFrame, lake: Lake, runs: set[str]
) -> dict[str, tuple[pd.Series, float, pd.Index] | None]:
    """For each run of ``runs``: the account's shares and cash the engine carries to its
    session from the end of the account's previous run (that run's snapshot and fills),
    through the corporate actions with ex-dates after the previous run's session up to this
    one (shares times the split ratio, then the dividend per share in cash), and the symbols
    held with such actions; None for an account's first run."""
    out: dict[str, tuple[pd.Series, float, pd.Index] | None] = {}
    order = snaps.drop_duplicates("run_id")
    account = (
        order["broker"].astype(str)
        + ":"
        + order["account_id"].astype(str)
        + ":"
        + order["strategy"].astype(str)
    )  # each strategy's own book (its sleeve) on the account
    actions = _actions(lake, order["day"])
    previous: dict[str, tuple[dt.date, pd.Series, float]] = {}
    for (run_id, day), key in zip(zip(order["run_id"], order["day"], strict=True), account,
                                  strict=True):  # fmt: skip
        snap = snaps.loc[snaps["run_id"] == run_id].set_index("symbol")
        if run_id in runs:
            before = previous.get(key)
            out[run_id] = None if before is None else _through(before, day, actions)
        mine = fills.loc[fills["run_id"] == run_id] if "side" in fills else None
        if mine is None or mine.empty:
            previous[key] = (day, snap["held"].astype(np.float64), float(snap["cash"].iloc[0]))
            continue
        signed = np.where(mine["side"] == "buy", 1.0, -1.0) * mine["quantity"].astype(float)
        traded = pd.Series(signed.to_numpy(), index=mine["symbol"].astype(str))
        shares = snap["held"].astype(np.float64).add(traded.groupby(level=0).sum(),
                                                     fill_value=0.0)  # fmt: skip
        cash = (
            float(snap["cash"].iloc[0])
            - float((signed * mine["price"].astype(float)).sum())
            - float(mine["commission"].astype(float).sum())
        )
        previous[key] = (day, shares, cash)
    return out


def _actions(lake: Lake, days: pd.Series) -> pd.DataFrame:
    """The lake's corporate actions from the first to the last of ``days``."""
    if "corporate_actions" not in lake.tables() or days.empty:
        return pd.DataFrame(columns=["date", "symbol", "split_ratio", "dividend"])
    return lake.read("corporate_actions", min(days), max(days))


def _through(
    before: tuple[dt.date, pd.Series, float], day: dt.date, actions: pd.DataFrame
) -> tuple[pd.Series, float, pd.Index]:
    """``before`` (session, shares, cash) carried to ``day`` through ``actions``
    (:func:`~qpipe.data.adjustments.book_actions`)."""
    since, shares, cash = before
    dates = pd.to_datetime(actions["date"]).dt.date if len(actions) else actions["date"]
    window = actions.loc[(dates > since) & (dates <= day)]
    shares, cash, touched = book_actions(shares, cash, window)
    return shares, cash, pd.Index(touched)


def _empty(columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})


def _stamped(frame: pd.DataFrame) -> pd.DataFrame:
    """Journal rows of mode ``execute`` (empty with the stamp columns when none)."""
    if frame.empty:
        return pd.DataFrame(columns=["session", "strategy", "mode", "run_id", "symbol"])
    return frame.loc[frame["mode"] == "execute"]


def _closes(
    lake: Lake, calendar: TradingCalendar, symbols: list[str], days: pd.Series
) -> pd.DataFrame:
    """Raw closes (date x symbol) of ``symbols`` from :data:`MARK_DAYS` before the first
    session's previous session to the last session."""
    first = calendar.previous_session(min(days)) - dt.timedelta(days=MARK_DAYS)
    bars = lake.read("bars", first, max(days), columns=["close"], symbols=symbols)
    table = bars.pivot(index="date", columns="symbol", values="close")
    return table.reindex(columns=symbols)


def _replay(
    engine: BacktestEngine,
    config: BacktestConfig,
    snap: pd.DataFrame,
    run_id: str,
    fills: pd.DataFrame,
    intended: pd.DataFrame,
    closes: pd.DataFrame,
    calendar: TradingCalendar,
    carried: tuple[pd.Series, float, pd.Index] | None,
) -> tuple[dict, pd.DataFrame]:
    """One session's replay and comparison (see the module's docstring)."""
    first = snap.iloc[0]
    session, name = first["day"], first["strategy"]
    day, prev = pd.Timestamp(session), pd.Timestamp(calendar.previous_session(session))
    snap = snap.set_index("symbol")
    symbols = pd.Index(sorted(snap.index), name="symbol")
    cash0, nav0 = _sizing(first)
    held = snap["held"].astype(np.float64).reindex(symbols)
    history = closes.reindex(columns=symbols)
    before = history.loc[history.index <= prev].ffill()
    mark_prev = before.iloc[-1] if len(before) else pd.Series(np.nan, index=symbols)
    # The session's close from the lake; a session not in the lake yet (today's, before the
    # nightly sync) is the snapshot's price, as the live data bridge takes it for its bar.
    close_t = (
        history.loc[day]
        if day in history.index
        else snap["price"].astype(np.float64).reindex(symbols)
    ).astype(np.float64)
    mark = close_t.fillna(mark_prev)
    panel = np.vstack([mark_prev.to_numpy(), close_t.to_numpy()])
    coords = {"date": pd.DatetimeIndex([prev, day], name="date"), "symbol": symbols}
    var = (("date", "symbol"), panel)
    bars = xr.Dataset({"open": var, "close": var,
                       "volume": (("date", "symbol"), np.full_like(panel, np.nan))},
                      coords=coords)  # fmt: skip
    weights = np.full(panel.shape, np.nan)
    weights[1] = snap["target_weight"].astype(np.float64).reindex(symbols).to_numpy()
    result = engine.run(
        bars, xr.DataArray(weights, coords=coords, dims=("date", "symbol")),
        initial_positions=held[held != 0], initial_cash=cash0,
    )  # fmt: skip
    efills = result.fills.loc[result.fills["date"] == day]
    sign = np.where(efills["side"] == "buy", 1.0, -1.0)
    e_qty = pd.Series(sign * efills["quantity"].to_numpy(), index=efills["symbol"].astype(str))
    e_px = pd.Series(efills["price"].to_numpy(), index=e_qty.index)
    e_fee = pd.Series(efills["fee"].to_numpy(), index=e_qty.index)

    mine = fills.loc[(fills["session"] == first["session"]) & (fills["strategy"] == name)]
    lsign = np.where(mine["side"] == "buy", 1.0, -1.0) if len(mine) else np.array([])
    live = pd.DataFrame({
        "symbol": mine["symbol"].astype(str).to_numpy() if len(mine) else [],
        "q": lsign * mine["quantity"].to_numpy(dtype=np.float64) if len(mine) else [],
        "cost": lsign * mine["quantity"].to_numpy(dtype=np.float64)
        * mine["price"].to_numpy(dtype=np.float64) if len(mine) else [],
        "fee": mine["commission"].to_numpy(dtype=np.float64) if len(mine) else [],
    }).groupby("symbol").sum()  # fmt: skip
    plan = intended.loc[intended["run_id"] == run_id].set_index("symbol")
    plan_qty = pd.Series(
        np.where(plan["side"] == "buy", 1.0, -1.0) * plan["quantity"].astype(np.float64),
        index=plan.index,
    )
    names = sorted(set(plan_qty.index) | set(live.index) | set(e_qty.index))
    slip, rate, minimum = config.slippage_rate, config.commission_rate, config.min_commission
    q_l = live["q"].reindex(names).fillna(0.0)
    cost_l = live["cost"].reindex(names).fillna(0.0)
    fee_l = live["fee"].reindex(names).fillna(0.0)
    q_e = e_qty.reindex(names).fillna(0.0)
    fee_e = e_fee.reindex(names).fillna(0.0)
    m = mark.reindex(names)
    with np.errstate(invalid="ignore", divide="ignore"):
        p_l = cost_l / q_l.where(q_l != 0)
    model = pd.Series(
        [fill_price(c, s, slip) for c, s in zip(close_t.reindex(names).fillna(m),
                                                 np.sign(q_l.where(q_l != 0, q_e)), strict=True)],
        index=names, dtype=np.float64,
    )  # fmt: skip
    p_e = e_px.reindex(names).fillna(model)
    traded = q_l != 0
    fills_amt = float((q_l * (p_e - p_l) + (q_l - q_e) * (m - p_e))[traded].sum())
    missed_amt = float((-q_e * (m - p_e))[~traded & (q_e != 0)].sum())
    costs_amt = float(fee_e.sum() - fee_l.sum())
    priced = mark.notna()
    end_qty = held.add(q_l, fill_value=0.0).reindex(symbols).fillna(held)
    nav_live = (
        cash0 - float(cost_l.sum()) - float(fee_l.sum()) + float((end_qty * mark)[priced].sum())
    )
    nav_engine = float(result.equity.loc[day])
    start_value = cash0 + float((held * mark)[priced & (held != 0)].sum())
    diff = nav_live - nav_engine
    amounts = {"fills": fills_amt, "costs": costs_amt, "missed_orders": missed_amt}
    corporate = np.nan
    if carried is not None:
        shares, cash, touched = carried
        corporate = 0.0
        if len(touched):
            now = held.reindex(touched).fillna(0.0) - shares.reindex(touched).fillna(0.0)
            corporate = float((now * mark.reindex(touched)).fillna(0.0).sum())
            if not _sleeved(first):  # a sleeve's cash is no ledger: its shares only
                corporate += float(first["cash"]) - cash
    causes = {**amounts, "corporate_actions": 0.0 if np.isnan(corporate) else corporate}
    named = [k for k, v in sorted(causes.items(), key=lambda kv: -abs(kv[1]))
             if abs(v) > TOLERANCE * abs(nav0)]  # fmt: skip
    row = {
        "date": day, "strategy": name, "broker": first.get("broker", ""), "run_id": run_id,
        "orders": float(len(plan_qty)), "filled": float(traded.sum()),
        "missed": float(((q_l == 0) & plan_qty.reindex(names).fillna(0.0).ne(0)).sum()),
        "nav_start": nav0, "start_diff": nav0 - start_value, "nav_live": nav_live,
        "nav_engine": nav_engine, "nav_diff": diff, "nav_diff_rel": diff / nav0,
        **amounts, "residual": diff - sum(amounts.values()), "corporate_actions": corporate,
        "cause": ", ".join(named) or "none",
    }  # fmt: skip
    quoted = plan["price"].astype(np.float64).reindex(names)
    expected = pd.Series(
        [fill_price(p, s, slip) for p, s in zip(quoted, np.sign(q_l), strict=True)],
        index=names, dtype=np.float64,
    )  # fmt: skip
    model_fee = pd.Series(
        [commission(abs(q) * p, rate, minimum) if q else 0.0 for q, p in
         zip(q_l, p_l.fillna(0.0), strict=True)], index=names, dtype=np.float64,
    )  # fmt: skip
    orders = pd.DataFrame({
        "date": day, "strategy": name, "symbol": names,
        "intended": plan_qty.reindex(names).to_numpy(), "quoted": quoted.to_numpy(),
        "filled": q_l.to_numpy(), "fill_price": p_l.to_numpy(), "fee": fee_l.to_numpy(),
        "engine_quantity": q_e.to_numpy(), "engine_price": e_px.reindex(names).to_numpy(),
        "engine_fee": fee_e.to_numpy(), "expected_price": expected.where(traded).to_numpy(),
        "slippage_vs_model": ((p_l - expected) * q_l).where(traded).to_numpy(),
        "fee_vs_model": (fee_l - model_fee).where(traded).to_numpy(),
    })  # fmt: skip
    return row, orders


def write_drift(lake: Lake, sessions: pd.DataFrame) -> None:
    """Write the session rows to the ``live_drift`` lake table, one partition per session
    (replaced whole: pass every strategy of a session), keyed ``(date, symbol)`` with the
    strategy's name as ``symbol``; missing values NULL."""
    if sessions.empty:
        return
    frame = sessions.assign(symbol=sessions["strategy"].astype(str))
    lake.write(TABLE, frame, sorted({d.date() for d in pd.to_datetime(frame["date"])}))


def project_drift(
    project: Project,
    strategy: str | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
    write: bool = True,
) -> DriftReport:
    """:func:`compute_drift` of ``project``'s journal and lake with :func:`project_config`;
    with ``write``, the sessions of every strategy on the dates selected go to the
    ``live_drift`` table (then filtered to ``strategy``)."""
    journal = Journal(project.lake.root)
    cfg = project_config(project)
    report = compute_drift(journal, project.lake, project.calendar, cfg, None, start, end)
    if write:
        write_drift(project.lake, report.sessions)
    if strategy is None:
        return report
    sessions = report.sessions.loc[report.sessions["strategy"] == strategy]
    sessions = sessions.assign(tracking=_tracking(sessions))
    orders = report.orders.loc[report.orders["strategy"] == strategy]
    return DriftReport(sessions.reset_index(drop=True), orders.reset_index(drop=True))
