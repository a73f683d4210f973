"""The Dockerfile, checked without a Docker engine: hadolint, and the properties we rely on."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.deploy.support import DOCKERFILE, ROOT

HADOLINT = Path(sys.executable).parent / "hadolint"


def test_hadolint_finds_nothing_in_the_dockerfile() -> None:
    done = subprocess.run(
        [str(HADOLINT), "--failure-threshold", "info", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        check=False,
    )

    assert done.returncode == 0, done.stdout + done.stderr


def test_hadolint_would_catch_a_floating_base_image(tmp_path: Path) -> None:
    floating = tmp_path / "Dockerfile"
    floating.write_text(DOCKERFILE.read_text().replace("python:3.11.14-slim-bookworm", "python"))

    done = subprocess.run(
        [str(HADOLINT), str(floating)], capture_output=True, text=True, check=False
    )

    assert "DL3006" in done.stdout  # "Always tag the version of an image explicitly"


def test_the_image_is_built_in_stages_and_runs_as_a_user_with_a_healthcheck() -> None:
    lines = DOCKERFILE.read_text().splitlines()
    stages = [line for line in lines if line.startswith("FROM ")]
    runtime = lines[lines.index(stages[-1]) :]

    assert len(stages) == 2
    assert all(re.search(r":\d+\.\d+\.\d+-slim", stage) for stage in stages)  # pinned
    user = [line for line in runtime if line.startswith("USER ")]
    assert user
    assert user[-1].split()[1].split(":")[0] not in ("root", "0")
    assert any(line.startswith("HEALTHCHECK ") for line in runtime)
    assert "uv sync --frozen --no-dev" in DOCKERFILE.read_text()  # the lock file, as locked


def test_the_build_context_leaves_out_what_the_image_does_not_need() -> None:
    ignored = (ROOT / ".dockerignore").read_text().split()

    assert {".venv", ".git", "tests", "var"} <= set(ignored)
