"""The ``where`` language: a tokenizer, a recursive-descent parser and a numpy evaluator.

Expressions are parsed into a small AST, checked against the columns of the table being
queried (names and types) before any partition is read, and evaluated column-wise with numpy.
Nothing is ever passed to ``eval``.

Grammar (keywords and function names are case-insensitive)::

    expr       := or_expr
    or_expr    := and_expr ("or" and_expr)*
    and_expr   := not_expr ("and" not_expr)*
    not_expr   := "not" not_expr | comparison
    comparison := sum [("<" | "<=" | ">" | ">=" | "==" | "=" | "!=") sum]
    sum        := product (("+" | "-") product)*
    product    := unary (("*" | "/") unary)*
    unary      := ("-" | "+") unary | atom
    atom       := NUMBER | STRING | NAME | FUNC "(" expr ")" | "(" expr ")"
    FUNC       := "abs" | "isnan" | "isfinite"

Numbers are decimal or scientific (``1``, ``.5``, ``2e-3``); strings are quoted with ``'`` or
``"``; names are column names (``g``, ``g_err``, ``nmeasure``). Comparisons with NaN are
false, as in numpy. A whole expression must be a condition (a comparison, ``isnan``/
``isfinite``, a boolean combination, or a boolean column).

Examples
--------
>>> import numpy as np
>>> e = parse("g < 19 and not isnan(r)")
>>> sorted(e.columns())
['g', 'r']
>>> check(e, {"g": "f", "r": "f"})
>>> evaluate(e, {"g": np.array([18.0, 20.0]), "r": np.array([1.0, np.nan])}).tolist()
[True, False]
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

import numpy as np

from dvo.errors import QuerySyntaxError

__all__ = ["Expr", "Node", "parse", "check", "evaluate", "conjuncts", "FUNCTIONS"]

FUNCTIONS = ("abs", "isnan", "isfinite")
_KEYWORDS = ("and", "or", "not")
_COMPARE = ("<", "<=", ">", ">=", "==", "=", "!=")
_TOKEN = re.compile(
    r"""(?P<ws>\s+)
      |(?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
      |(?P<str>'[^']*'|"[^"]*")
      |(?P<name>[A-Za-z_][A-Za-z0-9_]*)
      |(?P<op><=|>=|==|!=|[<>=+\-*/()])""",
    re.VERBOSE,
)


@dataclass(frozen=True)
class Token:
    """One token: kind (num, str, name, op, end), text and 0-based position."""

    kind: str
    text: str
    pos: int


@dataclass(frozen=True)
class Node:
    """An AST node: ``op`` is num, str, col, neg, call, cmp, bin, and, or, not."""

    op: str
    pos: int
    value: object = None
    args: tuple[Node, ...] = ()

    def columns(self) -> set[str]:
        """Every column name the expression reads."""
        own = {self.value} if self.op == "col" else set()
        return own.union(*(a.columns() for a in self.args))


def _error(source: str, pos: int, what: str) -> QuerySyntaxError:
    exc = QuerySyntaxError(f"where: {what} at position {pos + 1} in {source!r}")
    exc.position, exc.source = pos, source
    return exc


def tokenize(source: str) -> list[Token]:
    """Split an expression into tokens (whitespace dropped, an ``end`` token appended)."""
    tokens, pos = [], 0
    while pos < len(source):
        m = _TOKEN.match(source, pos)
        if m is None:
            raise _error(source, pos, f"unexpected character {source[pos]!r}")
        if m.lastgroup != "ws":
            tokens.append(Token(m.lastgroup, m.group(), pos))
        pos = m.end()
    tokens.append(Token("end", "", len(source)))
    return tokens


class _Parser:
    def __init__(self, source: str) -> None:
        self.source, self.tokens, self.i = source, tokenize(source), 0

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def at(self, *texts: str) -> bool:
        t = self.tok
        text = t.text.lower() if t.kind == "name" else t.text
        return t.kind in ("op", "name") and text in texts

    def take(self) -> Token:
        t = self.tok
        self.i += 1
        return t

    def fail(self, what: str) -> QuerySyntaxError:
        t = self.tok
        shown = "end of expression" if t.kind == "end" else repr(t.text)
        return _error(self.source, t.pos, f"{what}, found {shown}")

    def parse(self) -> Node:
        if self.tok.kind == "end":
            raise self.fail("empty expression")
        node = self.or_expr()
        if self.tok.kind != "end":
            raise self.fail("expected an operator or the end")
        return node

    def _chain(self, keyword: str, sub) -> Node:
        node = sub()
        while self.at(keyword):
            t = self.take()
            node = Node(keyword, t.pos, None, (node, sub()))
        return node

    def or_expr(self) -> Node:
        return self._chain("or", self.and_expr)

    def and_expr(self) -> Node:
        return self._chain("and", self.not_expr)

    def not_expr(self) -> Node:
        if self.at("not"):
            t = self.take()
            return Node("not", t.pos, None, (self.not_expr(),))
        return self.comparison()

    def comparison(self) -> Node:
        left = self.sum()
        if self.tok.kind == "op" and self.tok.text in _COMPARE:
            t = self.take()
            text = "==" if t.text == "=" else t.text
            left = Node("cmp", t.pos, text, (left, self.sum()))
            if self.tok.kind == "op" and self.tok.text in _COMPARE:
                raise self.fail("chained comparison: use 'and'")
        return left

    def _binary(self, ops: tuple[str, ...], sub) -> Node:
        node = sub()
        while self.tok.kind == "op" and self.tok.text in ops:
            t = self.take()
            node = Node("bin", t.pos, t.text, (node, sub()))
        return node

    def sum(self) -> Node:
        return self._binary(("+", "-"), self.product)

    def product(self) -> Node:
        return self._binary(("*", "/"), self.unary)

    def unary(self) -> Node:
        if self.tok.kind == "op" and self.tok.text in ("-", "+"):
            t = self.take()
            inner = self.unary()
            return inner if t.text == "+" else Node("neg", t.pos, None, (inner,))
        return self.atom()

    def atom(self) -> Node:
        t = self.tok
        if t.kind == "num":
            self.take()
            return Node("num", t.pos, float(t.text))
        if t.kind == "str":
            self.take()
            return Node("str", t.pos, t.text[1:-1])
        if t.kind == "op" and t.text == "(":
            self.take()
            node = self.or_expr()
            self.expect_close()
            return node
        if t.kind == "name" and t.text.lower() in _KEYWORDS:
            raise self.fail("expected a value")
        if t.kind == "name":
            self.take()
            if t.text.lower() in FUNCTIONS and self.at("("):
                self.take()
                arg = self.or_expr()
                self.expect_close()
                return Node("call", t.pos, t.text.lower(), (arg,))
            return Node("col", t.pos, t.text)
        raise self.fail("expected a value")

    def expect_close(self) -> None:
        if not self.at(")"):
            raise self.fail("expected ')'")
        self.take()


@dataclass(frozen=True)
class Expr:
    """A parsed expression: its source text (for error messages) and its AST root."""

    source: str
    root: Node

    def columns(self) -> set[str]:
        """Every column name the expression reads."""
        return self.root.columns()


def parse(source: str) -> Expr:
    """Parse a where-expression into an AST.

    Raises
    ------
    QuerySyntaxError
        With the position (1-based) and text of the offending token.

    Examples
    --------
    >>> parse("abs(g - r) > 0.5").root.op
    'cmp'
    >>> parse("g < )")
    Traceback (most recent call last):
    dvo.errors.QuerySyntaxError: where: expected a value, found ')' at position 5 in 'g < )'
    """
    if not isinstance(source, str):
        raise QuerySyntaxError(f"where: expected a string, got {type(source).__name__}")
    return Expr(source, _Parser(source).parse())


def _kind(node: Node, kinds: dict[str, str], source: str) -> str:
    """Type of a node: 'f' number, 's' string, 'b' boolean; raises on misuse."""
    op = node.op
    if op in ("num", "str"):
        return "f" if op == "num" else "s"
    if op == "col":
        if node.value not in kinds:
            same = [k for k in kinds if k.lower() == str(node.value).lower()]
            near = same or difflib.get_close_matches(str(node.value), list(kinds), n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise _error(source, node.pos, f"unknown column {node.value!r}{hint}")
        return kinds[node.value]
    sub = [_kind(a, kinds, source) for a in node.args]
    if op in ("and", "or", "not"):
        bad = [a for a, k in zip(node.args, sub, strict=True) if k != "b"]
        if bad:
            raise _error(source, bad[0].pos, f"'{op}' needs conditions on both sides")
        return "b"
    if op == "cmp":
        if "s" in sub and (sub[0] != sub[1] or node.value not in ("==", "!=")):
            raise _error(source, node.pos, "strings compare only with == or != to strings")
        return "b"
    if any(k == "s" for k in sub):
        raise _error(source, node.pos, f"'{node.value or op}' needs numbers, not strings")
    return "b" if op == "call" and node.value != "abs" else "f"


def check(expr: Expr, kinds: dict[str, str]) -> None:
    """Check names and types against ``kinds`` (column -> numpy kind: 'f','i','u','b','S','U').

    Raises QuerySyntaxError naming the offending token if a column is unknown, a string is used
    in arithmetic, or the whole expression is not a condition.
    """
    simple = {k: ("s" if v in "SU" else "b" if v == "b" else "f") for k, v in kinds.items()}
    if _kind(expr.root, simple, expr.source) != "b":
        raise _error(expr.source, expr.root.pos, "the expression must be a condition (e.g. g < 19)")


_BIN = {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide}
_CMP = {
    "<": np.less,
    "<=": np.less_equal,
    ">": np.greater,
    ">=": np.greater_equal,
    "==": np.equal,
    "!=": np.not_equal,
}
_CALL = {"abs": np.abs, "isnan": np.isnan, "isfinite": np.isfinite}


def _value(node: Node, cols: dict[str, np.ndarray]):
    op = node.op
    if op in ("num", "str"):
        return node.value
    if op == "col":
        col = cols[node.value]
        return col.astype(np.float64) if col.dtype.kind in "iu" else col
    args = [_value(a, cols) for a in node.args]
    if op == "neg":
        return np.negative(args[0])
    if op == "bin":
        return _BIN[node.value](*args)
    if op == "cmp":
        return _compare(node.value, *args)
    if op == "call":
        return _CALL[node.value](np.asarray(args[0], dtype=np.float64))
    if op == "not":
        return np.logical_not(args[0])
    return (np.logical_and if op == "and" else np.logical_or)(*args)


def _compare(op: str, left, right):
    if isinstance(left, str) or isinstance(right, str):
        left = left.astype(str) if isinstance(left, np.ndarray) else left
        right = right.astype(str) if isinstance(right, np.ndarray) else right
    return _CMP[op](left, right)


def evaluate(expr: Expr, cols: dict[str, np.ndarray]) -> np.ndarray:
    """Evaluate a checked expression on columns of equal length; returns a bool array.

    Examples
    --------
    >>> evaluate(parse("x * 2 >= 4"), {"x": np.array([1, 2, 3])}).tolist()
    [False, True, True]
    """
    n = len(next(iter(cols.values()))) if cols else 1
    with np.errstate(all="ignore"):
        out = _value(expr.root, cols)
    return np.broadcast_to(np.asarray(out, dtype=bool), (n,)).copy()


def conjuncts(node: Node) -> list[Node]:
    """The top-level ``and`` terms of an AST (for pruning with statistics)."""
    if node.op == "and":
        return [t for a in node.args for t in conjuncts(a)]
    return [node]
