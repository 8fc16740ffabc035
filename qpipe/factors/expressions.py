"""Factor expressions: ``"rank(ts_mean(close, 20) / close)"`` parsed into an AST, checked and
compiled into a :class:`~qpipe.factors.registry.Factor` (no ``eval``, no Python ``ast``).

Grammar, loosest binding first (every binary level is left-associative unless noted)::

    expr    := logic_or ( "?" expr ":" expr )?          ternary, right-assoc -> where(c, a, b)
    logic_or  := logic_and ( ("||" | "or") logic_and )*
    logic_and := compare ( ("&&" | "and") compare )*
    compare := sum ( ("<" | "<=" | ">" | ">=" | "==" | "!=") sum )?     comparisons do not chain
    sum     := product ( ("+" | "-") product )*
    product := unary ( ("*" | "/") unary )*
    unary   := ("-" | "+") unary | power                 so -x^2 = -(x^2)
    power   := primary ( "^" unary )?                    right-assoc: 2^3^2 = 2^(3^2)
    primary := NUMBER | NAME | NAME "(" [expr ("," expr)*] ")" | "(" expr ")"

Names are the input fields (``open high low close volume vwap returns``), ``adv<d>`` (average
daily dollar volume over d sessions, ``inputs.adv(d)``) and ``sector`` (group labels, only as
the group argument of ``neutralize``). Functions are the operators of
:data:`qpipe.factors.operators.OPERATORS`: panel arguments first, then numeric parameters.

Semantics: numbers broadcast; ``/`` by zero gives NaN (not inf); comparisons give 1.0/0.0 and
NaN if either side is NaN; ``&&``/``||`` treat non-zero as true and give NaN if either side is
NaN; a window parameter d (a constant expression >= 1) is used as floor(d). The look-back is
inferred: numbers and price fields 0, the ``returns`` field 1, ``adv<d>`` d-1, a windowed
operator its arguments' look-back plus d (``delay``, ``delta``, ``returns``) or d-1 (rolling
windows), anything else the maximum over its arguments.
"""

from __future__ import annotations

import difflib
import math
import operator as _op
import re
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
import xarray as xr

from qpipe.factors.inputs import FactorInputs
from qpipe.factors.operators import ALIASES, OPERATORS
from qpipe.factors.registry import INPUT_FIELDS, Factor, FactorError, FactorLibrary

__all__ = [
    "BinOp",
    "Call",
    "ExpressionError",
    "Name",
    "Neg",
    "Node",
    "Num",
    "compile_expression",
    "library_from_expressions",
    "parse",
    "unparse",
]

FIELDS: tuple[str, ...] = ("open", "high", "low", "close", "volume", "vwap", "returns")
FIELD_LOOKBACK: dict[str, int] = {"returns": 1}
"""Sessions of history a field itself depends on."""
"""Input fields an expression may name (besides ``adv<d>`` and ``sector``)."""
GROUP = "sector"
_DIMS = ("date", "symbol")
_ADV = re.compile(r"adv(\d+)")


# --------------------------------------------------------------------------------------------
# Errors


class ExpressionError(FactorError):
    """An expression is invalid; ``position`` is the 0-based character offset of the fault."""

    def __init__(
        self,
        reason: str,
        expression: str,
        position: int,
        length: int = 1,
        factor: str | None = None,
    ) -> None:
        self.reason = reason
        self.expression = expression
        self.position = position
        self.length = max(1, length)
        self.factor = factor
        super().__init__(self._message())

    def _message(self) -> str:
        text, pos = self.expression, self.position
        head = f"factor {self.factor!r}: " if self.factor else ""
        start = text.rfind("\n", 0, pos) + 1
        stop = text.find("\n", pos)
        line = text[start : stop if stop >= 0 else len(text)].replace("\t", " ")
        where = f"position {pos}"
        if "\n" in text:
            where += f" (line {text.count(chr(10), 0, pos) + 1}, column {pos - start + 1})"
        width = max(1, min(self.length, len(line) - (pos - start)))
        caret = " " * (pos - start) + "^" * width
        return f"{head}{self.reason} at {where} in expression:\n    {line}\n    {caret}"

    def __reduce__(self) -> tuple[type, tuple[object, ...]]:
        return type(self), (self.reason, self.expression, self.position, self.length, self.factor)

    def for_factor(self, factor: str) -> ExpressionError:
        """The same error, naming ``factor``."""
        return ExpressionError(self.reason, self.expression, self.position, self.length, factor)


def _suggest(name: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(name, candidates, n=3, cutoff=0.6)
    return f" (did you mean {', '.join(close)}?)" if close else ""


# --------------------------------------------------------------------------------------------
# AST (positions are not part of equality: parse("a+b") == BinOp("+", Name("a"), Name("b")))


@dataclass(frozen=True)
class Node:
    """An expression node; ``pos``/``end`` delimit its source text ``text[pos:end]``."""

    pos: int = field(default=0, compare=False, kw_only=True)
    end: int = field(default=0, compare=False, kw_only=True)


@dataclass(frozen=True)
class Num(Node):
    """A number literal."""

    value: float


@dataclass(frozen=True)
class Name(Node):
    """An input field, ``adv<d>`` or ``sector``."""

    name: str


@dataclass(frozen=True)
class Neg(Node):
    """Unary minus."""

    operand: Node


@dataclass(frozen=True)
class BinOp(Node):
    """A binary operator: ``+ - * / ^ < <= > >= == != && ||``."""

    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class Call(Node):
    """An operator call; the ternary ``c ? a : b`` is ``Call("where", (c, a, b))``."""

    func: str
    args: tuple[Node, ...]


def unparse(node: Node) -> str:
    """Source text for ``node`` (fully parenthesised; ``parse(unparse(n)) == n``)."""
    if isinstance(node, Num):
        return repr(node.value)
    if isinstance(node, Name):
        return node.name
    if isinstance(node, Neg):
        return f"(-{unparse(node.operand)})"
    if isinstance(node, BinOp):
        return f"({unparse(node.left)} {node.op} {unparse(node.right)})"
    if isinstance(node, Call):
        return f"{node.func}({', '.join(unparse(a) for a in node.args)})"
    raise TypeError(f"not an expression node: {node!r}")


# --------------------------------------------------------------------------------------------
# Tokenizer


@dataclass(frozen=True)
class _Token:
    kind: Literal["num", "name", "op", "end"]
    text: str
    pos: int

    @property
    def end(self) -> int:
        return self.pos + len(self.text)

    def describe(self) -> str:
        if self.kind == "end":
            return "end of expression"
        noun = {"num": "number ", "name": "name "}.get(self.kind, "")
        return f"{noun}{self.text!r}"


_NUMBER = re.compile(r"(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SYMBOLS = ("&&", "||", "<=", ">=", "==", "!=", "<", ">", "+", "-", "*", "/", "^")
_SYMBOLS += ("(", ")", ",", "?", ":")
_MISTYPED = {"&": "&&", "|": "||", "=": "==", "!": "!="}
_KEYWORDS = {"and": "&&", "or": "||"}


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        if m := _NUMBER.match(text, i):
            if m.end() < n and (text[m.end()].isalnum() or text[m.end()] in "_."):
                stop = _NAME.match(text, m.end())
                bad = text[i : stop.end() if stop else m.end() + 1]
                raise ExpressionError(f"malformed number {bad!r}", text, i, len(bad))
            tokens.append(_Token("num", m.group(), i))
            i = m.end()
            continue
        if m := _NAME.match(text, i):
            word = m.group()
            kind: Literal["name", "op"] = "op" if word in _KEYWORDS else "name"
            tokens.append(_Token(kind, word, i))
            i = m.end()
            continue
        if text.startswith("**", i):
            raise ExpressionError("unexpected '**' (power is '^')", text, i, 2)
        sym = next((s for s in _SYMBOLS if text.startswith(s, i)), None)
        if sym is None:
            hint = f" (did you mean {_MISTYPED[ch]!r}?)" if ch in _MISTYPED else ""
            raise ExpressionError(f"unexpected character {ch!r}{hint}", text, i)
        tokens.append(_Token("op", sym, i))
        i += len(sym)
    tokens.append(_Token("end", "", n))
    return tokens


# --------------------------------------------------------------------------------------------
# Parser (recursive descent, one function per precedence level)

_COMPARE = frozenset({"<", "<=", ">", ">=", "==", "!="})


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.i = 0
        self.open_parens: list[int] = []

    # token helpers
    @property
    def tok(self) -> _Token:
        return self.tokens[self.i]

    def at(self, *ops: str) -> bool:
        t = self.tok
        return t.kind == "op" and (_KEYWORDS.get(t.text, t.text) in ops)

    def take(self) -> _Token:
        t = self.tok
        self.i += 1
        return t

    def fail(self, expected: str) -> ExpressionError:
        t = self.tok
        if t.kind == "end":
            if self.open_parens:
                where = self.open_parens[-1]
                reason = f"unexpected end of expression: '(' at position {where} is not closed"
            else:
                reason = f"unexpected end of expression (expected {expected})"
            return ExpressionError(reason, self.text, t.pos)
        reason = f"unexpected {t.describe()} (expected {expected})"
        if t.text == ")" and not self.open_parens:
            reason = "unexpected ')' (unbalanced parentheses)"
        elif t.kind in ("num", "name") and expected.startswith("an operator"):
            reason = f"unexpected {t.describe()} (missing operator or comma?)"
        return ExpressionError(reason, self.text, t.pos, len(t.text))

    def expect(self, op: str) -> _Token:
        if not self.at(op):
            raise self.fail(f"{op!r}")
        return self.take()

    # grammar
    def parse(self) -> Node:
        if self.tok.kind == "end":
            raise ExpressionError("empty expression", self.text, 0)
        node = self.ternary()
        if self.tok.kind != "end":
            raise self.fail("an operator or the end")
        return node

    def ternary(self) -> Node:
        cond = self.logic_or()
        if not self.at("?"):
            return cond
        self.take()
        yes = self.ternary()
        self.expect(":")
        no = self.ternary()
        return Call("where", (cond, yes, no), pos=cond.pos, end=no.end)

    def _left_assoc(self, ops: tuple[str, ...], operand: Callable[[], Node]) -> Node:
        node = operand()
        while self.at(*ops):
            t = self.take()
            right = operand()
            op = _KEYWORDS.get(t.text, t.text)
            node = BinOp(op, node, right, pos=node.pos, end=right.end)
        return node

    def logic_or(self) -> Node:
        return self._left_assoc(("||",), self.logic_and)

    def logic_and(self) -> Node:
        return self._left_assoc(("&&",), self.compare)

    def compare(self) -> Node:
        left = self.sum()
        if not self.at(*_COMPARE):
            return left
        t = self.take()
        right = self.sum()
        if self.at(*_COMPARE):
            raise ExpressionError(
                "comparisons do not chain; write (a < b) && (b < c)",
                self.text,
                self.tok.pos,
                len(self.tok.text),
            )
        return BinOp(t.text, left, right, pos=left.pos, end=right.end)

    def sum(self) -> Node:
        return self._left_assoc(("+", "-"), self.product)

    def product(self) -> Node:
        return self._left_assoc(("*", "/"), self.unary)

    def unary(self) -> Node:
        if self.at("-", "+"):
            t = self.take()
            operand = self.unary()
            return Neg(operand, pos=t.pos, end=operand.end) if t.text == "-" else operand
        return self.power()

    def power(self) -> Node:
        base = self.primary()
        if not self.at("^"):
            return base
        self.take()
        exponent = self.unary()
        return BinOp("^", base, exponent, pos=base.pos, end=exponent.end)

    def primary(self) -> Node:
        t = self.tok
        if t.kind == "num":
            self.take()
            return Num(float(t.text), pos=t.pos, end=t.end)
        if t.kind == "name":
            self.take()
            if not self.at("("):
                return Name(t.text, pos=t.pos, end=t.end)
            self.open_parens.append(self.take().pos)
            args: list[Node] = []
            if not self.at(")"):
                args.append(self.ternary())
                while self.at(","):
                    self.take()
                    args.append(self.ternary())
            if not self.at(")"):
                raise self.fail("',' or ')'")
            close = self.take()
            self.open_parens.pop()
            return Call(t.text, tuple(args), pos=t.pos, end=close.end)
        if self.at("("):
            self.open_parens.append(self.take().pos)
            inner = self.ternary()
            if not self.at(")"):
                raise self.fail("')'")
            close = self.take()
            return replace(inner, pos=self.open_parens.pop(), end=close.end)
        raise self.fail("a number, a name or '('")


# --------------------------------------------------------------------------------------------
# Operators: the one place that reads OperatorSpec fields (OPERATORS, ALIASES)


@dataclass(frozen=True)
class _Signature:
    """What the checker and evaluator need to know about an operator.

    Arguments are ``panels..., [group], params...``: ``n_panels`` panels (at least that many
    if ``variadic``), one group-label argument if ``group``, then ``n_params`` numeric
    parameters of which the last ``n_optional`` may be left out.
    """

    name: str
    fn: Callable[..., xr.DataArray]
    n_panels: int
    group: bool
    n_params: int
    variadic: bool
    fewest: int
    most: float
    """Most arguments (inf if ``variadic``)."""
    window: int | None
    """Index among the numeric parameters of the window ``d``, or None."""
    scalar_operands: bool
    """A panel argument may be a number (``where``)."""
    lookback: Callable[..., int]
    """Look-back of the operator itself given its numeric parameters as written."""

    def arity(self) -> str:
        lo, hi = self.fewest, self.most
        if self.variadic or lo == hi:
            word = "argument" if lo == 1 else "arguments"
            return f"{'at least ' * self.variadic}{lo} {word}"
        return f"{lo} to {hi:.0f} arguments"

    def panel_count(self, n_args: int) -> int:
        """How many of ``n_args`` arguments are panels."""
        return n_args - self.group - self.n_params if self.variadic else self.n_panels


_PAPER_TS = {"min": "ts_min", "max": "ts_max"}
"""The paper's ``min(x, d)``/``max(x, d)`` with a number ``d`` mean ``ts_min``/``ts_max``."""


def _resolve(name: str) -> str | None:
    """The OPERATORS name for ``name`` (exact, else lower-cased or a paper alias), or None."""
    if name in OPERATORS:
        return name
    key = ALIASES.get(name.lower(), name.lower())
    return key if key in OPERATORS else None


def _signature(name: str) -> _Signature:
    spec = OPERATORS[name]
    fewest, most = spec.arity
    return _Signature(
        name=name,
        fn=spec.fn,
        n_panels=spec.n_panels,
        group=spec.group,
        n_params=spec.n_params,
        variadic=spec.variadic,
        fewest=fewest,
        most=math.inf if most is None else most,
        window=spec.window,
        scalar_operands=spec.scalar_operands,
        lookback=spec.lookback,
    )


# --------------------------------------------------------------------------------------------
# Checker: kinds, constants, look-back, inputs; resolves operator names


@dataclass(frozen=True)
class _Info:
    node: Node
    """The node with operator names resolved (aliases, ``max(x, d)`` -> ``ts_max``)."""
    kind: Literal["number", "panel", "group"]
    value: float = math.nan
    """The constant's value when ``kind == "number"``."""
    lookback: int = 0


def _describe(info: _Info) -> str:
    if info.kind == "number":
        return f"the number {info.value:g}"
    return "group labels (sector)" if info.kind == "group" else "a panel"


_GROUP_ONLY = "sector (group labels) can only be the group argument of neutralize"


class _Checker:
    """Validates an AST against the operators; records the input fields used."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.fields: set[str] = set()

    def error(self, reason: str, node: Node) -> ExpressionError:
        return ExpressionError(reason, self.text, node.pos, node.end - node.pos)

    def check(self, node: Node) -> _Info:
        if isinstance(node, Num):
            return _Info(node, "number", node.value)
        if isinstance(node, Name):
            return self.name(node)
        if isinstance(node, Neg):
            inner = self.value(node.operand)
            out = replace(node, operand=inner.node)
            if inner.kind == "number":
                return _Info(out, "number", -inner.value)
            return _Info(out, "panel", lookback=inner.lookback)
        if isinstance(node, BinOp):
            left, right = self.value(node.left), self.value(node.right)
            out = replace(node, left=left.node, right=right.node)
            if left.kind == right.kind == "number":
                return _Info(out, "number", float(_BINARY[node.op](left.value, right.value)))
            return _Info(out, "panel", lookback=max(left.lookback, right.lookback))
        if isinstance(node, Call):
            return self.call(node)
        raise TypeError(f"not an expression node: {node!r}")

    def value(self, node: Node) -> _Info:
        """A number or a panel (not group labels)."""
        info = self.check(node)
        if info.kind == "group":
            raise self.error(_GROUP_ONLY, node)
        return info

    def name(self, node: Name) -> _Info:
        name = node.name
        if name in FIELDS:
            self.fields.add(name)
            # `returns` at t is close(t) / close(t-1) - 1: one session of history.
            return _Info(node, "panel", lookback=FIELD_LOOKBACK.get(name, 0))
        if name == GROUP:
            return _Info(node, "group")
        if m := _ADV.fullmatch(name):
            days = int(m.group(1))
            if days < 1:
                raise self.error(f"{name}: adv needs at least 1 day", node)
            self.fields.add("dollar_volume")
            return _Info(node, "panel", lookback=days - 1)
        if _resolve(name) is not None:
            raise self.error(f"{name!r} is an operator: call it as {name}(...)", node)
        if name == "adv":
            raise self.error("adv needs a number of days, e.g. adv20", node)
        hint = _suggest(name, [*FIELDS, GROUP, "adv20"])
        raise self.error(f"unknown name {name!r}{hint}", node)

    def call(self, node: Call) -> _Info:
        name, args = node.func, node.args
        at_name = Name(name, pos=node.pos, end=node.pos + len(name))
        resolved = _resolve(name)
        if resolved is None:
            if name in FIELDS or name == GROUP or _ADV.fullmatch(name):
                raise self.error(f"{name!r} is an input, not an operator", at_name)
            hint = _suggest(name, sorted(OPERATORS))
            raise self.error(f"unknown operator {name!r}{hint}", at_name)
        sig = _signature(resolved)
        if not sig.fewest <= len(args) <= sig.most:
            at = args[int(sig.most)] if len(args) > sig.most else at_name
            raise self.error(f"{name} expects {sig.arity()}, got {len(args)}", at)
        infos = [self.check(a) for a in args]
        note = ""
        if resolved in _PAPER_TS and len(args) == 2 and infos[1].kind == "number":
            sig = _signature(_PAPER_TS[resolved])  # the paper's max(x, d) = ts_max(x, d)
            note = f" ({name}(x, d) with a number d is {sig.name}(x, d))"
        n_panels = sig.panel_count(len(args))
        lookback, params = 0, []
        for i, (arg, info) in enumerate(zip(args, infos, strict=True)):
            ordinal = f"argument {i + 1} of {name}"
            if sig.group and i == n_panels:
                if info.kind != "group":
                    raise self.error(f"{ordinal} must be sector, got {_describe(info)}", arg)
            elif info.kind == "group":
                raise self.error(_GROUP_ONLY, arg)
            elif i < n_panels:
                if info.kind == "number" and not sig.scalar_operands:
                    raise self.error(f"{ordinal} must be a panel, got {_describe(info)}", arg)
                lookback = max(lookback, info.lookback)
            else:
                j = i - n_panels - sig.group
                what = "a window (a number of sessions)" if j == sig.window else "a number"
                if info.kind != "number":
                    raise self.error(f"{ordinal} must be {what}, got a panel", arg)
                if j == sig.window and not (math.isfinite(info.value) and info.value >= 1):
                    raise self.error(
                        f"{ordinal} is a window: it must be a positive number of sessions "
                        f"(>= 1), got {info.value:g}{note}",
                        arg,
                    )
                params.append(info.value)
        self.probe(sig, n_panels, params, node)
        out = replace(node, func=sig.name, args=tuple(i.node for i in infos))
        return _Info(out, "panel", lookback=lookback + sig.lookback(*params))

    def probe(self, sig: _Signature, n_panels: int, params: list[float], node: Call) -> None:
        """Call the operator on a 1 x 1 panel so that a bad parameter (``winsorize(x, 0.7)``)
        fails when the expression is loaded rather than when it is computed."""
        cell = xr.DataArray([[1.0]], coords={"date": [0], "symbol": ["s"]}, dims=_DIMS)
        group = [xr.DataArray(["g"], coords={"symbol": ["s"]}, dims=("symbol",))] * sig.group
        try:
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                sig.fn(*[cell] * n_panels, *group, *params)
        except (ValueError, TypeError) as exc:
            reason = str(exc) if str(exc).startswith(sig.name) else f"{sig.name}: {exc}"
            raise self.error(reason, node) from None


def _check(text: str) -> tuple[_Info, set[str]]:
    """Parse and check ``text``: the resolved AST's info and the input fields it reads."""
    checker = _Checker(text)
    try:
        return checker.check(_Parser(text).parse()), checker.fields
    except RecursionError:
        raise ExpressionError("expression is nested too deeply", text, 0) from None


def parse(text: str) -> Node:
    """The checked AST of ``text`` with operator names resolved (``Ts_Rank`` -> ``ts_rank``,
    ``max(x, 5)`` -> ``ts_max(x, 5)``); raises :class:`ExpressionError` on any fault."""
    return _check(text)[0].node


# --------------------------------------------------------------------------------------------
# Evaluation

Value = xr.DataArray | float


def _arith(fn: Callable[[Any, Any], Any]) -> Callable[[Value, Value], Value]:
    def apply(a: Value, b: Value) -> Value:
        if not isinstance(a, xr.DataArray) and not isinstance(b, xr.DataArray):
            a = np.float64(a)
        with np.errstate(all="ignore"):
            return fn(a, b)

    return apply


def _divide(a: Value, b: Value) -> Value:
    """``a / b`` with NaN (not inf) where ``b`` is 0."""
    with np.errstate(all="ignore"):
        if isinstance(a, xr.DataArray) or isinstance(b, xr.DataArray):
            return xr.where(b == 0, np.nan, a / b)
        return math.nan if b == 0 else a / b


def _nan_unless_both(a: Value, b: Value, out: Any) -> Value:
    """``out`` (booleans) as 1.0/0.0, NaN where ``a`` or ``b`` is NaN."""
    missing = np.isnan(a) | np.isnan(b)
    if isinstance(out, xr.DataArray):
        return xr.where(missing, np.nan, out.astype(np.float64))
    return math.nan if missing else float(out)


def _compare(fn: Callable[[Any, Any], Any]) -> Callable[[Value, Value], Value]:
    def apply(a: Value, b: Value) -> Value:
        with np.errstate(invalid="ignore"):
            return _nan_unless_both(a, b, fn(a, b))

    return apply


def _logic(fn: Callable[[Any, Any], Any]) -> Callable[[Value, Value], Value]:
    def apply(a: Value, b: Value) -> Value:
        return _nan_unless_both(a, b, fn(a != 0, b != 0))

    return apply


_BINARY: dict[str, Callable[[Value, Value], Value]] = {
    "+": _arith(_op.add),
    "-": _arith(_op.sub),
    "*": _arith(_op.mul),
    "/": _divide,
    "^": _arith(_op.pow),
    "<": _compare(_op.lt),
    "<=": _compare(_op.le),
    ">": _compare(_op.gt),
    ">=": _compare(_op.ge),
    "==": _compare(_op.eq),
    "!=": _compare(_op.ne),
    "&&": _logic(_op.and_),
    "||": _logic(_op.or_),
}


class _Evaluator:
    """Evaluates a checked AST on whole panels; equal subexpressions are computed once."""

    def __init__(self, inputs: FactorInputs) -> None:
        self.inputs = inputs
        self.memo: dict[Node, Value] = {}

    def grid(self, value: float) -> xr.DataArray:
        return xr.full_like(self.inputs.close, value, dtype=np.float64)

    def eval(self, node: Node) -> Value:
        if isinstance(node, Num):
            return node.value
        if node in self.memo:
            return self.memo[node]
        out = self._eval(node)
        self.memo[node] = out
        return out

    def _eval(self, node: Node) -> Value:
        if isinstance(node, Name):
            m = _ADV.fullmatch(node.name)
            return self.inputs.adv(int(m.group(1))) if m else getattr(self.inputs, node.name)
        if isinstance(node, Neg):
            return -self.eval(node.operand)
        if isinstance(node, BinOp):
            return _BINARY[node.op](self.eval(node.left), self.eval(node.right))
        if isinstance(node, Call):
            sig = _signature(node.func)
            n_panels = sig.panel_count(len(node.args))
            args = [self.eval(a) for a in node.args]
            for i, v in enumerate(args[:n_panels]):
                if not isinstance(v, xr.DataArray):
                    args[i] = self.grid(v)  # a number where an operator allows one
            with np.errstate(all="ignore"):
                return sig.fn(*args)
        raise TypeError(f"not an expression node: {node!r}")

    def panel(self, node: Node) -> xr.DataArray:
        out = self.eval(node)
        if not isinstance(out, xr.DataArray):
            return self.grid(out)
        return out.transpose("date", "symbol").astype(np.float64)


# --------------------------------------------------------------------------------------------
# Factors


def compile_expression(name: str, text: str, description: str = "") -> Factor:
    """Factor ``name`` computing expression ``text`` (the description defaults to the text)."""
    try:
        info, fields = _check(text)
    except ExpressionError as exc:
        raise exc.for_factor(name) from None
    inputs = tuple(f for f in INPUT_FIELDS if f in fields)
    node = info.node

    def fn(x: FactorInputs) -> xr.DataArray:
        return _Evaluator(x).panel(node).rename(name)

    fn.__doc__ = description or text
    return Factor(name, description or text, info.lookback, inputs, fn)


def library_from_expressions(expressions: Mapping[str, str]) -> FactorLibrary:
    """A library with one factor per ``name: expression`` (errors name the factor)."""
    library = FactorLibrary()
    for name, text in expressions.items():
        if not isinstance(text, str):
            raise FactorError(f"factor {name!r}: expression must be a string, got {text!r}")
        library.add(compile_expression(name, text))
    return library
