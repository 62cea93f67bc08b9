"""How long each `qa` command takes to start, cold, next to a bare `python -c pass` measured in the same run.

    python benchmarks/cli_start.py [--repeats 5] [--json benchmarks/results/cli_start.json]

Each command runs in a fresh interpreter (subprocess), several times; the median wall time is printed, and
whether torch was imported (from `python -X importtime`'s log of the same command). `qa ask` uses the
project's index (built first, outside the timing, if missing or stale); `qa index` is timed when there is
nothing to do, which must not load the embedding model.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMMANDS: list[tuple[str, list[str]]] = [
    ("python -c pass", ["-c", "pass"]),
    ("qa --help", ["-m", "qa.cli", "--help"]),
    ("qa inspect", ["-m", "qa.cli", "inspect"]),
    ("qa inspect 004", ["-m", "qa.cli", "inspect", "004"]),
    ("qa index (nothing to do)", ["-m", "qa.cli", "index", "-q"]),
    ("qa ask", ["-m", "qa.cli", "ask", "松戸市の住民基本台帳の委託先は？"]),
]


def run(args: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True)
    took = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return took


def imports_torch(args: list[str], env: dict[str, str]) -> bool:
    done = subprocess.run([sys.executable, "-X", "importtime", *args], cwd=ROOT, env=env, capture_output=True, text=True)
    return any(line.split("|")[-1].strip() == "torch" for line in done.stderr.splitlines())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args(argv)
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    subprocess.run([sys.executable, "-m", "qa.cli", "index", "-q"], cwd=ROOT, env=env, check=True,
                   capture_output=True)  # so that `qa index` below has nothing to do and `qa ask` has an index
    rows = []
    for name, cmd in COMMANDS:
        run(cmd, env)  # warm the file cache once: "cold" here means a new interpreter, not an empty page cache
        times = [run(cmd, env) for _ in range(args.repeats)]
        rows.append({"command": name, "median_s": round(statistics.median(times), 3),
                     "min_s": round(min(times), 3), "max_s": round(max(times), 3),
                     "imports_torch": imports_torch(cmd, env)})
    base = rows[0]["median_s"]
    print(f"cold start, median of {args.repeats} runs ({os.cpu_count()} CPUs), python {sys.version.split()[0]}")
    print(f"{'command':<28} {'median':>8} {'min':>7} {'max':>7} {'over python':>12}  torch")
    for r in rows:
        print(f"{r['command']:<28} {r['median_s']:>7.2f}s {r['min_s']:>6.2f}s {r['max_s']:>6.2f}s "
              f"{r['median_s'] - base:>+11.2f}s  {'yes' if r['imports_torch'] else 'no'}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(rows, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
