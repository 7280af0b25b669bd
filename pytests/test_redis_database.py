"""Sharing failures between machines through Hypothesis' RedisExampleDatabase
(docs/python.md#sharing-failures-across-a-ci-fleet): one process finds a failure of
mmrace.testing.check and saves it to a real redis-server; a second process, which
generates nothing, replays it from Redis as its first example."""
from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis  # the client, in the test extra (pip install mmrace[test])

REDIS_SERVER = shutil.which("redis-server")
pytestmark = pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server is not installed "
                                "(Debian package redis-server; scripts/test.sh installs it)")

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
LOCK_ORDER = EXAMPLES / "mutants" / "khugepaged_hotplug_lock_order.mmr"

# One test, run by two processes; each appends the seeds it runs to SEEDS.  "find" draws
# seeds (about 1 in 14 fails); "replay" has only the reuse phase, so every example it
# runs comes from the database.  The source is the same for both: Hypothesis keys the
# database by the test's source.
SCRIPT = """
import sys, unittest
from hypothesis import Phase, given, settings, strategies as st
from hypothesis.extra.redis import RedisExampleDatabase
from redis import Redis
import mmrace
from mmrace.testing import check

PORT, SEEDS, STEP = int(sys.argv[1]), sys.argv[2], sys.argv[3]
PHASES = [Phase.reuse] if STEP == "replay" else [Phase.generate, Phase.shrink]

@settings(database=RedisExampleDatabase(Redis(host="127.0.0.1", port=PORT)), phases=PHASES,
          max_examples=300, deadline=None)
@given(st.integers(0, 99))
def test_hotplug_lock_order(seed):
    with open(SEEDS, "a") as f:
        f.write(f"{seed}\\n")
    check(mmrace.parse_file(%r), mmrace.Random(seed))

try:
    test_hotplug_lock_order()
except mmrace.LockOrder:
    sys.exit(7)
except unittest.SkipTest:  # the database had no example for the reuse phase
    sys.exit(0)
""" % str(LOCK_ORDER)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def redis_port(tmp_path):
    """A redis-server of its own on loopback, with no persistence; stopped after the test."""
    port = free_port()
    server = subprocess.Popen([REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1",
                               "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
                              stdout=subprocess.DEVNULL)
    try:
        client = redis.Redis(host="127.0.0.1", port=port)
        for _ in range(100):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                assert server.poll() is None, "redis-server exited at start"
                time.sleep(0.05)
        yield port
    finally:
        server.terminate()
        server.wait(timeout=10)


def run_step(tmp_path: Path, port: int, step: str) -> tuple[int, list[int]]:
    """Run the script's test in a new process: whether it failed, and its seeds."""
    script, seeds = tmp_path / "hunt.py", tmp_path / f"{step}.seeds"
    script.write_text(SCRIPT)
    proc = subprocess.run([sys.executable, str(script), str(port), str(seeds), step],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode in (0, 7), proc.stderr  # 7: the test failed with LockOrder
    runs = [int(line) for line in seeds.read_text().split()] if seeds.exists() else []
    return proc.returncode == 7, runs


def test_a_second_process_replays_the_first_ones_failure_from_redis_first(tmp_path, redis_port):
    # With Redis empty, the replaying process has nothing to run: it cannot find the
    # failure on its own.
    assert run_step(tmp_path, redis_port, "replay") == (False, [])

    found, seeds = run_step(tmp_path, redis_port, "find")
    assert found
    minimal = seeds[-1]  # Hypothesis runs the shrunk example last, to report it
    assert redis.Redis(host="127.0.0.1", port=redis_port).keys("hypothesis-example:*")

    failed, replayed = run_step(tmp_path, redis_port, "replay")
    assert failed
    assert replayed[0] == minimal  # its very first example is the failure, from Redis
