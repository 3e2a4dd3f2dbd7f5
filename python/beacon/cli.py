"""`beacon serve | check-config | backfill | reprocess | --version`."""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path
from typing import NoReturn

from beacon import __version__, logs
from beacon.config import Config, ConfigError, load_config
from beacon.config.source import ConfigSource
from beacon.datalock import DataDirError
from beacon.memory import tune_malloc

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad flag in one line and exits 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"beacon: {message}\n")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="beacon", description="Web-analytics beacon ingestion server.")
    p.add_argument("--version", action="version", version=f"beacon {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    serve = sub.add_parser("serve", help="run the server")
    serve.add_argument("--config", metavar="PATH", help="JSON config file")
    serve.add_argument("--listen", metavar="HOST:PORT", help="public listener address")
    serve.add_argument("--admin-listen", metavar="HOST:PORT", help="admin listener address")
    serve.add_argument("--data-dir", metavar="DIR", help="where daily files are written")
    serve.add_argument(
        "--workers",
        metavar="N",
        type=int,
        default=1,
        help="worker processes sharing the port (SO_REUSEPORT); default 1",
    )
    serve.add_argument("--worker-index", type=int, default=None, help=argparse.SUPPRESS)
    check = sub.add_parser("check-config", help="validate a config file and exit")
    check.add_argument("path", metavar="PATH")
    _backfill_parser(sub.add_parser("backfill", help="rebuild a daily file or a topic"))
    again = sub.add_parser(
        "reprocess", help="run the kept bad rows again through the current config"
    )
    again.add_argument("--config", metavar="PATH", required=True, help="JSON config file")
    again.add_argument("--date", metavar="YYYY-MM-DD", type=_date, help="one UTC day only")
    return p


def _backfill_parser(b: argparse.ArgumentParser) -> None:
    b.add_argument("--config", metavar="PATH", required=True, help="the server's config file")
    b.add_argument("--flavor", metavar="NAME", required=True)
    b.add_argument("--date", metavar="YYYY-MM-DD", required=True, help="in the flavor's zone")
    way = b.add_mutually_exclusive_group(required=True)
    way.add_argument("--from", dest="source", choices=["kafka"], help="rebuild the daily file")
    way.add_argument("--to", dest="target", choices=["kafka"], help="send the daily file")
    b.add_argument("--merge", action="store_true", help="add only what the destination lacks")


def _backfill(args: argparse.Namespace) -> NoReturn:
    from beacon.tools.backfill import BackfillError, backfill

    try:
        cfg = load_config(args.config)
        direction = "from" if args.source else "to"
        path, counts = backfill(cfg, args.flavor, args.date, direction, args.merge)
    except ConfigError as e:
        _fail(e.problems)
    except (BackfillError, OSError) as e:
        print(f"beacon: backfill: {e}", file=sys.stderr)
        sys.exit(EXIT_USAGE)
    where = f"{args.flavor} {args.date} {direction} kafka ({path})"
    print(f"beacon: backfill {where}: {counts.line()}")
    sys.exit(0)


def _date(value: str) -> str:
    """A `YYYY-MM-DD` date, as the daily files name it."""
    try:
        if len(value) == 10 and date.fromisoformat(value):
            return value
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"expected a date YYYY-MM-DD, got {value!r}")


def _fail(problems: list[str]) -> NoReturn:
    for problem in problems:
        print(f"beacon: config: {problem}", file=sys.stderr)
    sys.exit(EXIT_USAGE)


def _without(argv: list[str], flag: str) -> list[str]:
    """`argv` minus `flag` and its value (either `--flag V` or `--flag=V`)."""
    out: list[str] = []
    skip = False
    for a in argv:
        if skip:
            skip = False
        elif a == flag:
            skip = True
        elif not a.startswith(flag + "="):
            out.append(a)
    return out


def _source(args: argparse.Namespace) -> ConfigSource:
    if args.command == "check-config":
        return ConfigSource(Path(args.path))
    if args.command == "reprocess":
        return ConfigSource(Path(args.config))
    worker = None if args.worker_index is None else (args.worker_index, args.workers)
    path = Path(args.config) if args.config else None
    return ConfigSource(path, args.listen, args.data_dir, args.admin_listen, worker)


def main(argv: list[str] | None = None) -> None:
    tune_malloc()  # before any thread (librdkafka's, the server's) allocates
    args = _parser().parse_args(argv)
    if args.command == "backfill":
        _backfill(args)
    source = _source(args)
    try:
        loaded = source.load()
    except ConfigError as e:
        _fail(e.problems)
    cfg = loaded.cfg
    # Workers were started by a supervisor that has checked this already.
    if cfg.kafka.enabled and getattr(args, "worker_index", None) is None:
        from beacon.backends.kafka.settings import producer_problems

        # librdkafka's verdict on the producer settings, before anything starts.
        if problems := producer_problems(cfg):
            _fail(problems)
    if args.command == "check-config":
        print(f"beacon: {args.path}: ok ({len(cfg.flavors)} flavors)")
        return
    logs.setup(cfg.log_level)
    if args.command == "reprocess":
        _reprocess(cfg, args.date)
        return
    from beacon.runtime import run  # the server's imports are not needed to check a config

    if args.workers < 1:
        _fail(["--workers: expected a positive number"])
    if args.workers > 1 and args.worker_index is None:
        from beacon.workers import Supervisor

        rest = _without(argv if argv is not None else sys.argv[1:], "--workers")
        sys.exit(Supervisor(cfg, rest, args.workers).run())
    try:
        run(loaded, source)
    except DataDirError as e:
        print(f"beacon: {e}", file=sys.stderr)
        sys.exit(1)
    except OSError as e:
        print(f"beacon: cannot listen on {cfg.listen}: {e.strerror}", file=sys.stderr)
        sys.exit(1)


def _reprocess(cfg: Config, day: str | None) -> None:
    from beacon.tools.reprocess import reprocess

    try:
        reprocess(cfg, day, sys.stdout)
    except DataDirError as e:
        print(f"beacon: reprocess: {e}", file=sys.stderr)
        sys.exit(1)
