"""A small PromQL reader: which metric names an expression selects and which labels it relies on.

Not a full parser — enough to catch what breaks a dashboard or an alert silently: a metric or label that
the code does not emit, an unknown function, unbalanced brackets. promtool (CI) is the full check.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

AGGREGATIONS = frozenset(
    {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk", "topk", "quantile"}
)
FUNCTIONS = frozenset(
    {
        "abs", "absent", "absent_over_time", "ceil", "changes", "clamp", "clamp_max", "clamp_min",
        "day_of_month", "day_of_week", "day_of_year", "days_in_month", "delta", "deriv", "exp", "floor",
        "histogram_avg", "histogram_count", "histogram_fraction", "histogram_quantile", "histogram_sum",
        "holt_winters", "hour", "idelta", "increase", "irate", "label_join", "label_replace", "ln", "log2",
        "log10", "minute", "month", "predict_linear", "rate", "resets", "round", "scalar", "sgn", "sort",
        "sort_desc", "sqrt", "time", "timestamp", "vector", "year", "avg_over_time", "min_over_time",
        "max_over_time", "sum_over_time", "count_over_time", "quantile_over_time", "stddev_over_time",
        "stdvar_over_time", "last_over_time", "present_over_time",
        # Grafana's template-variable helpers
        "label_values", "label_names", "metrics", "query_result",
    }
)  # fmt: skip
GROUPING = frozenset({"by", "without"})
MATCHING = frozenset({"on", "ignoring", "group_left", "group_right"})
KEYWORDS = frozenset({"and", "or", "unless", "bool", "offset", "atan2", "inf", "nan", "Inf", "NaN"})
# Labels Prometheus attaches to every scraped series; the application never emits them itself.
TARGET_LABELS = frozenset({"job", "instance"})

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+|\#[^\n]*)
  | (?P<string>"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|`[^`]*`)
  | (?P<range>\[[^\]]*\])
  | (?P<number>0x[0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?(?:ms|[smhdwy])?)
  | (?P<var>\$\{?\w+\}?)
  | (?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
  | (?P<op>=~|!~|!=|==|>=|<=|[-+*/%^<>=(){},@])
    """,
    re.VERBOSE,
)


class PromQLError(ValueError):
    """The expression is not PromQL this reader understands."""


@dataclass
class Selection:
    """What one expression reads: metric name -> label names it matches, groups or joins on."""

    metrics: dict[str, set[str]] = field(default_factory=dict)

    def add(self, name: str, labels: set[str] | None = None) -> None:
        self.metrics.setdefault(name, set()).update(labels or ())


@dataclass(frozen=True)
class _Tok:
    kind: str
    text: str


def tokenize(expr: str) -> list[_Tok]:
    out: list[_Tok] = []
    pos = 0
    while pos < len(expr):
        m = _TOKEN.match(expr, pos)
        if m is None:
            raise PromQLError(f"unexpected {expr[pos : pos + 20]!r} at {pos}")
        pos = m.end()
        kind = m.lastgroup or ""
        if kind != "ws":
            out.append(_Tok(kind, m.group()))
    return out


def _close(toks: list[_Tok], start: int, opening: str, closing: str) -> int:
    """Index of the bracket that closes the one at ``start``."""
    depth = 0
    for i in range(start, len(toks)):
        if toks[i].kind == "op" and toks[i].text == opening:
            depth += 1
        elif toks[i].kind == "op" and toks[i].text == closing:
            depth -= 1
            if depth == 0:
                return i
    raise PromQLError(f"unbalanced {opening!r}")


def _label_list(toks: list[_Tok], start: int) -> tuple[set[str], int]:
    """Labels in ``(a, b)`` starting at the '(' at ``start``; returns them and the index after ')'."""
    end = _close(toks, start, "(", ")")
    labels = {t.text for t in toks[start + 1 : end] if t.kind == "ident"}
    return labels, end + 1


def _matchers(toks: list[_Tok], start: int) -> tuple[set[str], str | None, int]:
    """Labels in ``{a="x", b=~"y"}`` (and a ``__name__`` matcher's value); index after '}'."""
    end = _close(toks, start, "{", "}")
    labels: set[str] = set()
    name = None
    i = start + 1
    while i < end:
        t = toks[i]
        if t.kind == "ident":
            if i + 2 >= end + 1 or toks[i + 1].text not in ("=", "!=", "=~", "!~") or toks[i + 2].kind != "string":
                raise PromQLError(f"bad label matcher near {t.text!r}")
            if t.text == "__name__" and toks[i + 1].text == "=":
                name = toks[i + 2].text[1:-1]
            else:
                labels.add(t.text)
            i += 3
        elif t.kind == "string":  # a bare metric name inside braces (Prometheus 3)
            name = t.text[1:-1]
            i += 1
        elif t.text == ",":
            i += 1
        else:
            raise PromQLError(f"bad label matcher near {t.text!r}")
    return labels, name, end + 1


def select(expr: str) -> Selection:
    """The metrics ``expr`` selects, each with the labels the expression needs it to carry."""
    toks = tokenize(expr)
    balance = {"(": 0, "{": 0}
    for t in toks:
        if t.kind == "op" and t.text in "(){}":
            key = "(" if t.text in "()" else "{"
            balance[key] += 1 if t.text in "({" else -1
            if balance[key] < 0:
                raise PromQLError("unbalanced brackets")
    if any(balance.values()):
        raise PromQLError("unbalanced brackets")

    found: list[tuple[int, str, set[str]]] = []  # (token index, metric, labels)
    scoped: list[tuple[int, int, set[str]]] = []  # labels that apply to every metric in a token span
    joined: set[str] = set()  # on()/ignoring()/group_*() labels apply to both sides
    i = 0
    while i < len(toks):
        t = toks[i]
        nxt = toks[i + 1] if i + 1 < len(toks) else None
        if t.kind != "ident":
            if t.kind == "op" and t.text == "{":  # {__name__="x"} selector
                labels, name, after = _matchers(toks, i)
                if name is None:
                    raise PromQLError("selector without a metric name")
                found.append((i, name, labels))
                i = after
                continue
            i += 1
            continue
        word = t.text
        if word in GROUPING and nxt is not None and nxt.text == "(":
            # `sum(x) by (a)`: the aggregation branch already read these labels
            _, i = _label_list(toks, i + 1)
            continue
        if word in MATCHING:
            if nxt is not None and nxt.text == "(":
                labels, i = _label_list(toks, i + 1)
                joined |= labels
            else:
                i += 1
            continue
        if word in AGGREGATIONS and nxt is not None and (nxt.text == "(" or nxt.text in GROUPING):
            j = i + 1
            labels: set[str] = set()
            if toks[j].text in GROUPING:
                labels, j = _label_list(toks, j + 1)
            arg_end = _close(toks, j, "(", ")")
            if arg_end + 1 < len(toks) and toks[arg_end + 1].text in GROUPING:
                more, _ = _label_list(toks, arg_end + 2)
                labels |= more
            scoped.append((j, arg_end, labels))
            i = j
            continue
        if nxt is not None and nxt.text == "(":
            if word not in FUNCTIONS:
                raise PromQLError(f"unknown function {word!r}")
            if word == "label_values":  # label_values(metric, label) or label_values(label)
                end = _close(toks, i + 1, "(", ")")
                args = [x for x in toks[i + 2 : end] if x.kind == "ident"]
                if len(args) >= 2:
                    found.append((i + 2, args[0].text, {args[-1].text}))
                    i = end + 1
                    continue
            i += 1
            continue
        if word in KEYWORDS:
            i += 1
            continue
        labels = set()
        after = i + 1
        if nxt is not None and nxt.text == "{":
            labels, _, after = _matchers(toks, i + 1)
        found.append((i, word, labels))
        i = after

    sel = Selection()
    for idx, name, labels in found:
        extra = set(joined)
        for start, end, grouped in scoped:
            if start <= idx <= end:
                extra |= grouped
        sel.add(name, labels | extra)
    return sel


_LEGEND = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


def legend_labels(legend: str | None) -> set[str]:
    """Labels a Grafana legend (``{{marketplace}} {{endpoint}}``) prints."""
    return set(_LEGEND.findall(legend or ""))
