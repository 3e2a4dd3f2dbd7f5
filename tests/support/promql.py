"""The metric names a PromQL expression reads, without a PromQL parser: what is left once
strings, label matchers, range and subquery brackets, grouping clauses, function calls,
keywords and numbers are taken out. Good enough for the expressions beacon ships
(packaging/grafana, packaging/prometheus); promtool judges their syntax."""

from __future__ import annotations

import re

_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGES = re.compile(r"\[[^\[\]]*\]")
_GROUPING = re.compile(
    r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", re.IGNORECASE
)
# Grafana's `label_values(selector, label)`: the label is not a metric.
_LABEL_VALUES = re.compile(r"\blabel_values\((.*),\s*\w+\s*\)")
_IDENT = re.compile(r"(?<![\w.$])([a-zA-Z_:][\w:]*)(\s*\()?")
_KEYWORDS = {
    "and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
    "group_left", "group_right", "inf", "nan", "atan2",
}  # fmt: skip


def metric_names(expr: str) -> set[str]:
    """The metric names `expr` selects (`foo_total` in `rate(foo_total{a="b"}[5m])`);
    Grafana's `label_values(...)` queries too."""
    text = _STRINGS.sub('""', expr)
    text = _LABEL_VALUES.sub(r"label_values(\1)", text)
    text = _MATCHERS.sub(" ", text)
    text = _RANGES.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    names = set()
    for name, call in _IDENT.findall(text):
        if call or name.lower() in _KEYWORDS:
            continue  # a function (or Grafana's label_values), an operator, a keyword
        names.add(name)
    return names
