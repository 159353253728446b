"""The test command (`make test`): the suite in both deployment shapes.

1. Every test, with the edge calling the core in-process (`onekey up`'s shape). Each test
   module that starts an edge is noted (tests/stack.py, tests/procs.py).
2. Those modules again, with the edge calling the core over gRPC (separate components, as
   on several hosts). Tests that start no edge do not depend on the shape and run once; nor do
   the account app's, the stores' and the benchmark's own tests (tests/account, tests/migrations,
   tests/bench): they call an edge only as a client, to make usage or to try an old key, and
   what they check is the account app, the store or the harness, which no shape changes.

Arguments are passed to pytest in both passes. Exit status: 0 only when both passes pass.
"""
from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import tempfile
import time


SHAPE_FREE = ("tests/account/", "tests/migrations/", "tests/bench/")


def pytest(args: list[str], env: dict[str, str]) -> int:
    return subprocess.call([sys.executable, "-m", "pytest", *args], env=env)


def main(args: list[str]) -> int:
    with tempfile.TemporaryDirectory(prefix="onekey-tests-") as tmp:
        noted = pathlib.Path(tmp) / "edge-modules.txt"
        noted.touch()
        started = time.monotonic()
        print("== pass 1 of 2: the whole suite, edge and core in one process", flush=True)
        first = pytest(args, {**os.environ, "ONEKEY_TEST_SHAPE": "one-process",
                              "ONEKEY_TEST_EDGE_MODULES": str(noted)})
        modules = sorted(m for m in set(noted.read_text().split()) if not m.startswith(SHAPE_FREE))
        if first not in (0, 1) or not modules:  # an error before any test ran, or no edge started
            print(f"== pass 2 skipped: {'pytest could not run' if first not in (0, 1) else 'no test started an edge'}")
            return first
        print(f"== pass 2 of 2: the {len(modules)} modules that start an edge, edge -> core over gRPC "
              f"(pass 1 took {time.monotonic() - started:.0f} s): {' '.join(modules)}", flush=True)
        # Only the modules: pass 1's own selection (-k, -m, node ids) still applies to them.
        options = [a for a in args if not a.startswith("tests") or a.startswith("-")]
        second = pytest([*options, *modules], {**os.environ, "ONEKEY_TEST_SHAPE": "grpc"})
        print(f"== one process: {'passed' if first == 0 else 'FAILED'}; "
              f"over gRPC: {'passed' if second == 0 else 'FAILED'} ({time.monotonic() - started:.0f} s in all)")
        return first or second


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
