"""The generated stubs in onekey/v1 match protos/ (they are made only by scripts/gen_protos.py)."""
from __future__ import annotations

import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_generated_stubs_are_fresh():
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_protos.py"), "--check"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr + "\nrun `make protos` and commit the result"


def test_metering_service_has_no_write_method():
    from onekey.v1 import metering_pb2

    methods = metering_pb2.DESCRIPTOR.services_by_name["MeteringService"].methods_by_name
    assert all(name.startswith(("Get", "List")) for name in methods)
