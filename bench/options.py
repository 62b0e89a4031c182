"""What a bench run does, from the command line: durations, rounds, scenarios, seed sizes."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = REPO / ".merch" / "bench"


class BenchError(RuntimeError):
    """The bench cannot go on; the message says why, in one line."""


@dataclass(frozen=True)
class SeedPlan:
    """How much data the bench database holds at least."""

    users: int
    orders: int
    products: int


@dataclass(frozen=True)
class BenchOptions:
    """Everything one bench run is told."""

    duration_s: int
    rounds: int
    warmup_s: int
    scenarios: tuple[str, ...] | None
    quick: bool
    logging_off_run: bool
    logging_pairs: int
    logging_pair_s: int
    paced_run: bool
    soak_s: int
    profile_s: int
    profile_scenario: str
    connections: int
    threads: int
    workers: int
    seed: SeedPlan
    data_dir: Path

    @property
    def log_dir(self) -> Path:
        """Where the services' output goes."""
        return self.data_dir / "logs"

    @property
    def results_path(self) -> Path:
        """The JSON written at the end of every run."""
        return self.data_dir / "last.json"


FULL_SEED = SeedPlan(users=10_000, orders=100_000, products=1_000)
QUICK_SEED = SeedPlan(users=200, orders=2_000, products=50)


def positive_int(text: str) -> int:
    """argparse type: a whole number of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive whole number")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is negative")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The command line of `python -m bench`."""
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Start the stack on its own data directory, check each scenario once, "
        "drive it with wrk and print a table of req/s, latency and CPU per request.",
    )
    parser.add_argument(
        "--duration",
        type=positive_int,
        default=None,
        metavar="S",
        help="seconds per scenario per round (default 10; 2 with --quick)",
    )
    parser.add_argument(
        "--rounds",
        type=positive_int,
        default=None,
        metavar="N",
        help="interleaved rounds; the table shows medians (default 3; 1 with --quick)",
    )
    parser.add_argument(
        "--scenarios",
        default=None,
        metavar="A,B",
        help="comma-separated scenario keys (default: all; see --list)",
    )
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: tiny seed, 2 s, 1 round, 1 s warm-up"
    )
    parser.add_argument(
        "--no-logging-run",
        action="store_true",
        help="skip the logging twins: on, off and LOG_DURABILITY=sync (and the overhead rows)",
    )
    parser.add_argument(
        "--logging-pairs",
        type=_non_negative_int,
        default=None,
        metavar="N",
        help="after the rounds, N pairs of short runs with logging on and off (and sync), back to"
        " back, for the logging overhead table (default 10; 0 with --quick: the rounds' pairs)",
    )
    parser.add_argument(
        "--logging-pair-duration",
        type=positive_int,
        default=2,
        metavar="S",
        help="seconds per run of a logging pair (2)",
    )
    parser.add_argument(
        "--no-paced-run",
        action="store_true",
        help="skip the product(id) run at half its peak rate (p99 target)",
    )
    parser.add_argument(
        "--soak",
        type=_non_negative_int,
        default=0,
        metavar="S",
        help="after the rounds, a mixed load for S seconds sampling the gateway's RSS (off: 0)",
    )
    parser.add_argument(
        "--profile",
        type=_non_negative_int,
        default=0,
        metavar="S",
        help="after the rounds, py-spy the gateway and db_service for S s under product(id) load",
    )
    parser.add_argument(
        "--profile-scenario",
        default="gql_product_var",
        metavar="KEY",
        help="the load to profile under (gql_product_var)",
    )
    parser.add_argument(
        "--workers",
        type=positive_int,
        default=1,
        metavar="N",
        help="N > 1: also time product(id), orders(first: 50) and placeOrder on a gateway of N"
        " worker processes (GATEWAY_WORKERS=N) over the same db_service, and its worker spread",
    )
    parser.add_argument("--connections", type=positive_int, default=32, help="wrk -c (32)")
    parser.add_argument("--threads", type=positive_int, default=2, help="wrk -t (2)")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=DEFAULT_DATA_DIR,
        help="the bench's own PostgreSQL data, logs and results (.merch/bench)",
    )
    return parser


def options_from(args: argparse.Namespace) -> BenchOptions:
    """Turn parsed arguments into options, applying the --quick defaults."""
    quick = bool(args.quick)
    scenarios = None
    if args.scenarios:
        scenarios = tuple(s.strip() for s in args.scenarios.split(",") if s.strip())
    return BenchOptions(
        duration_s=args.duration or (2 if quick else 10),
        rounds=args.rounds or (1 if quick else 3),
        warmup_s=1 if quick else 2,
        scenarios=scenarios,
        quick=quick,
        logging_off_run=not args.no_logging_run,
        logging_pairs=(0 if quick else 10) if args.logging_pairs is None else args.logging_pairs,
        logging_pair_s=args.logging_pair_duration,
        paced_run=not args.no_paced_run,
        soak_s=args.soak,
        profile_s=args.profile,
        profile_scenario=args.profile_scenario,
        connections=args.connections,
        threads=min(args.threads, args.connections),
        workers=args.workers,
        seed=QUICK_SEED if quick else FULL_SEED,
        data_dir=Path(args.data_dir).resolve(),
    )


def parse_options(argv: Sequence[str] | None = None) -> tuple[BenchOptions, bool]:
    """The options, and whether only the scenario list was asked for."""
    args = build_parser().parse_args(argv)
    return options_from(args), bool(args.list)
