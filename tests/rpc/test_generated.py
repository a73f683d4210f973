"""The generated code is what `make proto` makes from proto/ today: regenerate and compare."""

from __future__ import annotations

import filecmp
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHECKED_IN = ROOT / "src" / "skilltree" / "rpc" / "v1"


def test_the_checked_in_code_matches_the_proto_definitions(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(ROOT / "proto" / "generate.py"), str(tmp_path)],
        check=True,
        capture_output=True,
    )
    fresh = tmp_path / "skilltree" / "rpc" / "v1"
    generated = sorted(path.name for path in fresh.glob("*_pb2*.py*"))
    checked_in = sorted(path.name for path in CHECKED_IN.glob("*_pb2*.py*"))

    assert generated == checked_in, "run `make proto` and commit the result"
    _, differing, _ = filecmp.cmpfiles(fresh, CHECKED_IN, generated, shallow=False)
    assert differing == [], f"out of date (run `make proto`): {differing}"
