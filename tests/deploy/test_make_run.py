"""`make run` on another port (SKILLTREE_HTTP_PORT, as the README says) tells the address it
serves and sends e-mails whose links lead there: a sign-up on port 8080 must not be confirmed
through a link to port 8000."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from tests.deploy.support import ROOT

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


def dry_run(**environment: str) -> str:
    """The commands `make run` would run (`make -n`: nothing is run)."""
    clean = {name: value for name, value in os.environ.items() if not name.startswith("SKILLTREE_")}
    result = subprocess.run(
        ["make", "--no-print-directory", "-n", "run"],
        cwd=ROOT,
        env=clean | environment,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout


def test_on_another_port_the_address_and_the_mail_links_follow_it() -> None:
    commands = dry_run(SKILLTREE_HTTP_PORT="8080")

    assert "open http://127.0.0.1:8080/" in commands
    assert "SKILLTREE_MAIL_PUBLIC_URL" in commands
    assert "http://127.0.0.1:8080" in commands.split("SKILLTREE_MAIL_PUBLIC_URL", 1)[1]
    assert "127.0.0.1:8000" not in commands


def test_by_default_it_serves_on_8000() -> None:
    assert "open http://127.0.0.1:8000/" in dry_run()
