"""Fixtures of the reliability suite: where each scenario records its row of figures."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from reliability.common import Row, append_row


@pytest.fixture(scope="session")
def reliability_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The JSON-lines results file: `$BEACON_RELIABILITY_OUT`, else one under the session's
    pytest temporary directory."""
    env = os.environ.get("BEACON_RELIABILITY_OUT")
    path = Path(env) if env else tmp_path_factory.getbasetemp() / "reliability.jsonl"
    print(f"\nreliability results: {path}")
    return path


@pytest.fixture
def record(reliability_out: Path) -> Callable[[Row], None]:
    """`record(row)` prints a scenario's figures and appends them to the results file."""

    def write(row: Row) -> None:
        print("\n" + row.describe())
        append_row(reliability_out, row)

    return write
