"""py-spy under load: where the gateway's and db_service's CPU goes.

`python -m bench --profile 20` samples the services with `py-spy record --nonblocking` while
wrk drives GraphQL product(id) (or --profile-scenario), writes the collapsed stacks (input for
flamegraph.pl or speedscope) to .merch/bench/profile-<scenario>-<service>.txt and prints where
the samples fell: by layer (the frame nearest the leaf that belongs to a known library), and
by function: "self" is time in the function itself, "total" includes what it called. Time in
C code (uvloop, grpc's core, asyncpg's protocol) shows under the Python frame that called it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

INSTALL_HINT = "pip install py-spy (into .venv; it belongs in the project's test extra)"
_RATE_HZ = 100
_EXTRA_WAIT_S = 30
# (layer, path fragments); a sample belongs to the layer of the frame nearest its leaf that
# matches, the first layer listed winning within one frame.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("GraphQL parse", ("graphql/language/parser", "graphql/language/lexer")),
    ("GraphQL validate", ("graphql/validation/",)),
    ("GraphQL execute", ("graphql/execution/",)),
    ("Strawberry", ("strawberry/",)),
    ("protobuf", ("google/protobuf", "protobuf/")),
    ("gRPC", ("grpc/", "grpc_")),
    ("asyncpg", ("asyncpg/",)),
    ("aiokafka", ("aiokafka/", "kafka/")),
    ("log shipper", ("logging_service/client",)),
    ("HTTP (uvicorn, starlette)", ("uvicorn/", "starlette/", "h11/", "httptools")),
    ("prometheus_client", ("prometheus_client/",)),
    ("pydantic", ("pydantic",)),
    ("gateway", ("gateway/",)),
    ("db_service", ("db_service/",)),
    ("logging_service", ("logging_service/",)),
)


@dataclass(frozen=True)
class FrameCost:
    """A function and the share of samples it was running in (self) or under (total)."""

    frame: str
    self_pct: float
    total_pct: float


def find_py_spy() -> str | None:
    """py-spy next to our interpreter, or on the PATH."""
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


def start_recording(py_spy: str, pid: int, seconds: int, output: Path) -> subprocess.Popen[str]:
    """Start `py-spy record` on `pid` in the background."""
    argv = [py_spy, "record", "--pid", str(pid), "--duration", str(seconds)]
    argv += ["--rate", str(_RATE_HZ), "--nonblocking", "--format", "raw", "--output", str(output)]
    return subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )


def finish_recording(process: subprocess.Popen[str], seconds: int) -> str:
    """Wait for a recording to end; its output (empty if it had to be killed)."""
    try:
        out, _ = process.communicate(timeout=seconds + _EXTRA_WAIT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate(timeout=5)
        return ""
    return out or ""


def _stacks(collapsed: str) -> Iterator[tuple[list[str], int]]:
    """(frames, samples) of each line of py-spy's collapsed output; malformed lines skipped."""
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if stack and count_text.isdigit():
            yield stack.split(";"), int(count_text)


def _function(frame: str) -> str:
    """`resolve (strawberry/schema/x.py:123)` -> `resolve (strawberry/schema/x.py)`."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    return f"{name} ({path})" if path else name


def top_costs(collapsed: str, limit: int = 15) -> tuple[int, list[FrameCost]]:
    """Total samples and the `limit` functions with the most self time, from collapsed stacks."""
    self_counts: Counter[str] = Counter()
    total_counts: Counter[str] = Counter()
    samples = 0
    for stack, count in _stacks(collapsed):
        samples += count
        frames = [_function(f) for f in stack if f]
        if not frames:
            continue
        self_counts[frames[-1]] += count
        for frame in set(frames):
            total_counts[frame] += count
    if not samples:
        return 0, []
    top = [
        FrameCost(frame, 100 * n / samples, 100 * total_counts[frame] / samples)
        for frame, n in self_counts.most_common(limit)
    ]
    return samples, top


def layers(collapsed: str) -> list[tuple[str, float]]:
    """The share of samples per layer (see LAYERS), largest first; the rest is "event loop"."""
    counts: Counter[str] = Counter()
    samples = 0
    for stack, count in _stacks(collapsed):
        samples += count
        counts[_layer(stack)] += count
    return [(name, 100 * n / samples) for name, n in counts.most_common()] if samples else []


def _layer(frames: list[str]) -> str:
    for frame in reversed(frames):
        if "__main__.py" in frame:
            continue  # an entry point is under every sample
        for name, fragments in LAYERS:
            if any(f in frame for f in fragments):
                return name
    return "event loop, threads, other"


def top_inclusive(collapsed: str, prefixes: tuple[str, ...], limit: int = 12) -> list[FrameCost]:
    """The functions of our own packages (`prefixes`) with the most time under them."""
    total_counts: Counter[str] = Counter()
    samples = 0
    for stack, count in _stacks(collapsed):
        samples += count
        for frame in {_function(f) for f in stack if f}:
            # Entry points (`__main__.py`) are under every sample and say nothing.
            if any(p in frame for p in prefixes) and "__main__.py" not in frame:
                total_counts[frame] += count
    if not samples:
        return []
    return [
        FrameCost(frame, 0.0, 100 * n / samples) for frame, n in total_counts.most_common(limit)
    ]


def describe(
    name: str,
    samples: int,
    by_layer: list[tuple[str, float]],
    costs: list[FrameCost],
    ours: list[FrameCost],
) -> str:
    """A printable summary of one service's profile."""
    lines = [f"{name}: {samples} samples at {_RATE_HZ} Hz; by layer:"]
    lines += [f"  {pct:5.1f} %  {layer}" for layer, pct in by_layer]
    lines.append(f"{name}: most self time:")
    lines += [f"  {c.self_pct:5.1f} % self {c.total_pct:5.1f} % total  {c.frame}" for c in costs]
    if ours:
        lines.append(f"{name}: our code with the most time under it (total):")
        lines += [f"  {c.total_pct:5.1f} %  {c.frame}" for c in ours]
    return "\n".join(lines)


def profile_services(
    py_spy: str,
    pids: dict[str, int],
    seconds: int,
    out_dir: Path,
    label: str,
    drive: Callable[[], None],
) -> dict[str, dict[str, object]]:
    """Record every pid in `pids` for `seconds` while `drive()` loads them; the summaries.

    The collapsed stacks go to `out_dir/profile-<label>-<name>.txt`.
    """
    recordings = {}
    for name, pid in pids.items():
        output = out_dir / f"profile-{label}-{name}.txt"
        output.unlink(missing_ok=True)
        recordings[name] = (start_recording(py_spy, pid, seconds, output), output)
    try:
        drive()
    finally:
        logs = {name: finish_recording(p, seconds) for name, (p, _) in recordings.items()}
    results: dict[str, dict[str, object]] = {}
    for name, (_, output) in recordings.items():
        if not output.exists():
            results[name] = {"error": logs[name].strip()[-500:] or "py-spy wrote nothing"}
            continue
        collapsed = output.read_text()
        samples, costs = top_costs(collapsed)
        ours = top_inclusive(collapsed, ("gateway/", "db_service/", "logging_service/"))
        by_layer = layers(collapsed)
        results[name] = {
            "samples": samples,
            "file": str(output),
            "layers": by_layer,
            "top_self": costs,
            "top_ours": ours,
            "text": describe(name, samples, by_layer, costs, ours),
        }
    return results
