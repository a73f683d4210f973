"""Generate the Python code of the protobuf definitions beside this file (`make proto`).

    python proto/generate.py src          # into the package: src/skilltree/rpc/v1/
    python proto/generate.py /tmp/check   # elsewhere: tests/rpc/test_generated.py compares

The definitions live under `skilltree/rpc/v1/` so that the generated modules import each other
as `skilltree.rpc.v1.*`, where the package keeps them; their protobuf package is `skilltree.v1`.
Messages and stubs come from grpcio-tools' own protoc; the typed stubs (`.pyi`) that mypy reads
from mypy-protobuf's plugins.
"""

from __future__ import annotations

import sys
from pathlib import Path

from grpc_tools import protoc

HERE = Path(__file__).resolve().parent
PACKAGE = Path("skilltree") / "rpc" / "v1"


def generate(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    bin_dir = Path(sys.executable).parent
    includes = Path(protoc.__file__).parent / "_proto"  # google/protobuf/*.proto
    sources = sorted(str(path.relative_to(HERE)) for path in (HERE / PACKAGE).glob("*.proto"))
    arguments = [
        "protoc",
        f"-I{HERE}",
        f"-I{includes}",
        f"--plugin=protoc-gen-mypy={bin_dir / 'protoc-gen-mypy'}",
        f"--plugin=protoc-gen-mypy_grpc={bin_dir / 'protoc-gen-mypy_grpc'}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        f"--mypy_out={out}",
        f"--mypy_grpc_out={out}",
        *sources,
    ]
    if protoc.main(arguments) != 0:
        raise SystemExit("protoc failed")


if __name__ == "__main__":
    generate(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE.parent / "src")
