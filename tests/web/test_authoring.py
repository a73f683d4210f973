"""Roadmaps of one's own in the browser: import with a preview, fork, edit (with the If-Match
conflict shown), all as plain form posts."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from tests.support.web import LiveServer, screenshots, serious_violations
from tests.web.test_pages import signed_in


async def browser_reported(page: Any, console_errors: list[str], status: int) -> None:
    """Chromium logs an error page's status itself (a console error, which would fail the
    test): wait for that one line, then forget it."""
    for _ in range(50):
        if console_errors:
            break
        await page.wait_for_timeout(100)
    assert len(console_errors) == 1, console_errors
    assert f"status of {status}" in console_errors[0]
    console_errors.clear()


CHECKLIST = """Great question! Here is a plan.

# Rust plan {tag}

## Basics

- [x] Ownership
- [/] Borrowing
- [ ] Lifetimes
- [ ] ownership

## Async

- [ ] Futures
- [ ] Tokio

Hope this helps!
"""


async def test_a_pasted_checklist_is_previewed_with_skipped_lines_and_warnings_then_imported(
    page: Any, server: LiveServer, shots: Path
) -> None:
    await signed_in(page, server, "Imo")
    tag = uuid.uuid4().hex[:6]
    await page.goto("/")
    await page.get_by_role("link", name="Import").click()
    await page.get_by_label("Checklist (markdown)").fill(CHECKLIST.format(tag=tag))
    await page.get_by_label("Record the ticked boxes as my progress").check()
    await page.get_by_role("button", name="Preview").click()

    preview = page.locator("section[aria-labelledby=preview-h]")
    assert await preview.get_by_role("heading", level=2).inner_text() == f"Preview: Rust plan {tag}"
    skipped = await preview.locator("ul.skipped").inner_text()
    assert "line 1: Great question! Here is a plan." in skipped
    assert "Hope this helps!" in skipped
    assert "duplicate 'ownership' merged" in await preview.locator("ul.warnings").inner_text()
    assert "record 2 ticked boxes" in await preview.inner_text()
    assert "Tokio" in await preview.locator(".preview-wrap").inner_text()
    await screenshots(page, "import", shots)
    assert await serious_violations(page) == []

    # Nothing was written by the preview.
    slug = f"rust-plan-{tag}"
    assert (await page.context.request.get(f"/v1/roadmaps/{slug}")).status == 404
    await preview.get_by_role("button", name=f"Import Rust plan {tag}").click()
    await page.wait_for_url(f"**/roadmaps/{slug}?imported=1")
    assert "Imported" in await page.locator(".ok-box").inner_text()
    assert await page.locator("li#t-ownership").get_attribute("data-status") == "done"
    assert await page.locator("li#t-borrowing").get_attribute("data-status") == "in_progress"
    assert await page.locator("li#t-tokio").get_attribute("data-status") == "todo"


async def test_an_empty_checklist_is_refused_with_the_reason(
    page: Any, server: LiveServer, console_errors: list[str]
) -> None:
    await signed_in(page, server, "Ned")
    await page.goto("/import")
    await page.get_by_role("button", name="Preview").click()
    assert (
        "Paste a markdown checklist or choose a file."
        in await page.locator("[role=alert]").inner_text()
    )
    await browser_reported(page, console_errors, 422)


async def test_an_owner_edits_their_roadmap_and_a_stale_form_is_refused_not_merged(
    page: Any, server: LiveServer, shots: Path, console_errors: list[str]
) -> None:
    await signed_in(page, server, "Eda")
    tag = uuid.uuid4().hex[:6]
    await page.goto("/import")
    await page.get_by_label("Checklist (markdown)").fill(CHECKLIST.format(tag=tag))
    await page.get_by_role("button", name="Preview").click()
    await page.get_by_role("button", name=f"Import Rust plan {tag}").click()
    await page.get_by_role("link", name="Edit this roadmap").click()
    slug = f"rust-plan-{tag}"
    await page.wait_for_url(f"**/roadmaps/{slug}/edit")

    # Add a topic under Async, rename one, move one, delete one.
    add = page.locator("section[aria-labelledby=add-h]")
    await add.get_by_label("Title").fill("Channels")
    await add.get_by_label("Under").select_option("async")
    await add.get_by_role("button", name="Add").click()
    await page.wait_for_url("**#e-channels")
    await page.get_by_label("Title of Lifetimes").fill("Lifetimes and variance")
    await page.locator("#e-lifetimes").get_by_role("button", name="Save").click()
    await page.wait_for_url("**#e-lifetimes")
    await page.get_by_label("Parent of Tokio").fill("basics")
    await page.get_by_label("Place of Tokio among its siblings").fill("1")
    await page.locator("#e-tokio").get_by_role("button", name="Save").click()
    await page.wait_for_url("**#e-tokio")
    await page.get_by_role("button", name="Delete Futures").click()
    assert "Deleted “futures”" in await page.locator(".ok-box").inner_text()
    await screenshots(page, "edit", shots)
    assert await serious_violations(page) == []

    tree = await (await page.context.request.get(f"/v1/roadmaps/{slug}/tree")).json()
    basics, asynchronous = tree["topics"]
    assert [t["slug"] for t in basics["children"]] == [
        "tokio",
        "ownership",
        "borrowing",
        "lifetimes",
    ]
    assert basics["children"][3]["title"] == "Lifetimes and variance"
    assert [t["slug"] for t in asynchronous["children"]] == ["channels"]

    # A move under its own subtopic is refused whole: the new title is not kept either.
    await page.get_by_label("Title of Basics").fill("Basics renamed")
    await page.get_by_label("Parent of Basics").fill("tokio")
    await page.locator("#e-basics").get_by_role("button", name="Save").click()
    assert "under itself" in await page.locator("[role=alert]").inner_text()
    await browser_reported(page, console_errors, 422)
    tree = await (await page.context.request.get(f"/v1/roadmaps/{slug}/tree")).json()
    assert tree["topics"][0]["title"] == "Basics"

    # Two tabs: the second saves a form opened before the first's change.
    other = await page.context.new_page()
    await other.goto(f"/roadmaps/{slug}/edit")
    await page.get_by_label("Title of Borrowing").fill("Borrowing (tab one)")
    await page.locator("#e-borrowing").get_by_role("button", name="Save").click()
    await page.wait_for_url("**#e-borrowing")
    await other.get_by_label("Title of Borrowing").fill("Borrowing (tab two)")
    response_code: list[int] = []
    other.on(
        "response", lambda r: response_code.append(r.status) if r.request.method == "POST" else None
    )
    await other.locator("#e-borrowing").get_by_role("button", name="Save").click()
    await other.wait_for_load_state()
    assert response_code == [412]
    alert = await other.locator("[role=alert]").inner_text()
    assert "changed since you opened the page" in alert
    assert await other.get_by_label("Title of Borrowing (tab one)").input_value() == (
        "Borrowing (tab one)"
    )
    await other.close()


async def test_forking_the_built_in_roadmap_copies_it_with_my_progress(
    page: Any, server: LiveServer
) -> None:
    await signed_in(page, server, "Fay")
    await page.goto("/roadmaps/backend")
    await page.locator("li#t-dns").get_by_role("button", name="Done").click()
    await page.wait_for_function(
        "el => el.dataset.status === 'done'", arg=await page.locator("li#t-dns").element_handle()
    )
    copy = f"my-backend-{uuid.uuid4().hex[:6]}"
    await page.get_by_text("Fork: make my own copy").click()
    await page.get_by_label("Short name of the copy").fill(copy)
    await page.get_by_label("Title", exact=True).fill("My backend")
    await page.get_by_role("button", name="Fork").click()
    await page.wait_for_url(f"**/roadmaps/{copy}/edit?forked=1")
    assert "This is your copy" in await page.locator(".ok-box").inner_text()
    await page.goto(f"/roadmaps/{copy}")
    assert await page.locator("h1").inner_text() == "My backend"
    assert await page.locator("li#t-dns").get_attribute("data-status") == "done"


async def test_someone_elses_roadmap_has_no_edit_page(
    page: Any, server: LiveServer, console_errors: list[str]
) -> None:
    await signed_in(page, server, "Gus")
    await page.goto("/roadmaps/backend")
    assert await page.get_by_role("link", name="Edit this roadmap").count() == 0
    response = await page.goto("/roadmaps/backend/edit")
    assert response.status == 403
    await browser_reported(page, console_errors, 403)
    assert "Only the owner of 'backend'" in await page.inner_text("main")
