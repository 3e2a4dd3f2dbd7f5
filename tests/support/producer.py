"""A stand-in for confluent-kafka's bound `Producer.produce`, for tests that drive the Kafka
sink without librdkafka in between (the sink's `attach(fast=..., reporter=...)`)."""

from __future__ import annotations

import json
from typing import Any


class Recorder:
    """Records `produce(topic, value, key, partition, callback, on_delivery, timestamp,
    headers)` calls, the value copied as librdkafka copies it (the sink lends it only for
    the call), and sends nothing; raises `error` on call number `fail_at` (0-based) if
    given."""

    def __init__(self, fail_at: int | None = None, error: BaseException | None = None) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.fail_at = fail_at
        self.error = error

    def __call__(self, *args: Any) -> None:
        if self.fail_at is not None and len(self.calls) == self.fail_at:
            self.fail_at = None
            assert self.error is not None
            raise self.error
        self.calls.append((args[0], bytes(args[1]), *args[2:]))

    def numbers(self) -> list[int]:
        """The `n` parameter of each recorded event, in order."""
        return [int(json.loads(c[1])["params"]["n"]) for c in self.calls]
