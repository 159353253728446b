"""Generate the gRPC stubs in onekey/v1/ from protos/ (the one way they are made).

Usage: python scripts/gen_protos.py [--check]
With --check nothing is written: the exit status says whether the committed stubs are stale.
"""
from __future__ import annotations

import argparse
import pathlib
import sys
import tempfile

from grpc_tools import protoc
import grpc_tools

ROOT = pathlib.Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
OUT_PACKAGE = ROOT / "onekey" / "v1"


def generate(out_dir: pathlib.Path) -> None:
    """Run protoc over every .proto under protos/ into out_dir."""
    well_known = pathlib.Path(grpc_tools.__file__).parent / "_proto"
    sources = sorted(str(p.relative_to(PROTOS)) for p in PROTOS.rglob("*.proto"))
    args = [
        "protoc",
        f"-I{PROTOS}",
        f"-I{well_known}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        *sources,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    init = out_dir / "onekey" / "v1" / "__init__.py"
    init.write_text('"""Generated from protos/ by scripts/gen_protos.py; do not edit."""\n')
    (out_dir / "onekey" / "__init__.py").write_text(
        '"""OneKey\'s gRPC contract: generated stubs in onekey.v1."""\n'
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the stubs are stale")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = pathlib.Path(tmp)
        generate(tmp_path)
        fresh = {p.name: p.read_bytes() for p in (tmp_path / "onekey" / "v1").iterdir() if p.is_file()}
        fresh_root = (tmp_path / "onekey" / "__init__.py").read_bytes()
        if args.check:
            current = {p.name: p.read_bytes() for p in OUT_PACKAGE.glob("*") if p.is_file()}
            root_now = (ROOT / "onekey" / "__init__.py").read_bytes() if (ROOT / "onekey" / "__init__.py").exists() else b""
            if current != fresh or root_now != fresh_root:
                print("generated stubs are stale: run `make protos`", file=sys.stderr)
                return 1
            return 0
        OUT_PACKAGE.mkdir(parents=True, exist_ok=True)
        for old in OUT_PACKAGE.glob("*"):
            if old.is_file():
                old.unlink()
        for name, data in fresh.items():
            (OUT_PACKAGE / name).write_bytes(data)
        (ROOT / "onekey" / "__init__.py").write_bytes(fresh_root)
    return 0


if __name__ == "__main__":
    sys.exit(main())
