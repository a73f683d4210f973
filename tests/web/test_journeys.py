"""The learner's journeys, in Chromium against the real server."""

from __future__ import annotations

import re
import time
import uuid
from pathlib import Path
from typing import Any

import pyotp

from tests.support.accounts import PASSWORD
from tests.support.web import LiveServer, screenshots, serious_violations

HEAD_BAR = ".roadmap-head > [data-bar] .figures"


async def sign_up_and_verify(page: Any, server: LiveServer, name: str) -> str:
    email = f"{name.lower()}-{uuid.uuid4().hex[:8]}@example.org"
    await page.goto("/sign-up")
    await page.get_by_label("Name").fill(name)
    await page.get_by_label("E-mail").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign up").click()
    await page.wait_for_url("**/sign-up/check-your-inbox")
    await page.goto(server.last_link(email))
    await page.wait_for_url("**/sign-in?verified=1")
    return email


async def sign_in(page: Any, email: str) -> None:
    await page.goto("/sign-in")
    await page.get_by_label("E-mail").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(re.compile(r".*/$"))


async def text(page: Any, selector: str) -> str:
    return str(await page.locator(selector).first.inner_text())


async def test_newcomer_signs_up_marks_five_topics_writes_a_note_and_finds_it_all_after_reload(
    page: Any, server: LiveServer, shots: Path
) -> None:
    await page.goto("/")
    assert (await text(page, "h1")).startswith("Learn backend")
    assert await page.get_by_role("link", name="Foundations").is_visible()
    await screenshots(page, "landing", shots)

    email = await sign_up_and_verify(page, server, "Nia")
    assert "Your address is confirmed" in await text(page, "main")
    await sign_in(page, email)
    assert "Welcome back, Nia" in await text(page, "h1")

    await page.goto("/roadmaps/backend")
    assert (await text(page, HEAD_BAR)).startswith("0/")
    section = page.locator("section#t-networking")
    assert await section.locator("summary [data-done]").first.inner_text() == "0"
    topics = section.locator("li.topic")
    for index in range(5):
        await topics.nth(index).get_by_role("button", name="Done").click()
        await page.wait_for_function(
            "([sel, n]) => document.querySelector(sel).textContent === String(n)",
            arg=[f"{HEAD_BAR} [data-done]", index + 1],
        )
    assert await section.locator("summary [data-done]").first.inner_text() == "5"
    assert await topics.nth(0).get_attribute("data-status") == "done"
    await screenshots(page, "roadmap", shots)

    link = topics.nth(0).locator("a.title")
    title = await link.inner_text()
    await link.click()
    assert await text(page, "h1") == title
    await page.get_by_label("Markdown").fill("# What I learned\n\nPackets **hop** between routers.")
    await page.get_by_role("button", name="Preview").click()
    assert await text(page, "[data-preview-target] strong") == "hop"
    await page.get_by_role("button", name="Save note").click()
    await page.wait_for_url("**#note")
    assert await text(page, ".note-html h1") == "What I learned"

    await page.reload()
    assert await text(page, ".note-html strong") == "hop"
    assert (await page.get_by_label("Markdown").input_value()).startswith("# What I learned")
    pressed = page.locator(".topic-status button[aria-pressed=true]")
    assert await pressed.get_attribute("value") == "done"
    await page.goto("/roadmaps/backend")
    assert await text(page, f"{HEAD_BAR} [data-done]") == "5"
    await page.goto("/")
    assert "5/" in await text(page, ".roadmaps .figures")
    await screenshots(page, "dashboard", shots)
    assert await serious_violations(page) == []


async def test_a_review_session_goes_through_the_due_topics_with_the_keyboard(
    page: Any, server: LiveServer, shots: Path
) -> None:
    email = await sign_up_and_verify(page, server, "Rae")
    await sign_in(page, email)
    await page.goto("/roadmaps/backend")
    topics = page.locator("section#t-http li.topic")
    for index in range(2):
        await topics.nth(index).get_by_role("button", name="Done").click()
        await page.wait_for_function(
            "([sel, n]) => document.querySelector(sel).textContent === String(n)",
            arg=[f"{HEAD_BAR} [data-done]", index + 1],
        )
    await page.goto("/")
    await page.get_by_role("link", name="Start reviewing").click()
    seen = []
    for expected_done in range(2):
        assert await text(page, ".review .muted") == f"{expected_done} reviewed" + (
            ", more after this one" if expected_done == 0 else ""
        )
        seen.append(await text(page, "h1"))
        assert not await page.locator("[data-answer] p").first.is_visible()
        await page.keyboard.press(" ")
        assert await page.locator("[data-answer] p").first.is_visible()
        if expected_done == 0:
            await screenshots(page, "review", shots)
        await page.keyboard.press("3")
        await page.wait_for_url(f"**/reviews?done={expected_done + 1}")
    assert await text(page, "h1") == "Well done!"
    assert "You reviewed 2 topics" in await text(page, "main")
    assert len(set(seen)) == 2
    assert await serious_violations(page) == []


async def test_two_factor_enrolment_then_sign_out_and_sign_in_with_the_code(
    page: Any, server: LiveServer, shots: Path
) -> None:
    email = await sign_up_and_verify(page, server, "Tom")
    await sign_in(page, email)
    await page.get_by_role("link", name="Tom").click()
    await page.get_by_role("button", name="Set up two-factor authentication").click()
    # The click returns once the next page starts loading, not once it is drawn:
    # wait for the code to be shown rather than ask whether it already is.
    await page.locator(".qr svg").wait_for(state="visible")
    await screenshots(page, "two-factor", shots)
    totp = pyotp.TOTP(await text(page, "[data-totp-secret]"))
    now = time.time()
    await page.get_by_label("Code from the app").fill(totp.at(now))
    await page.get_by_role("button", name="Turn on").click()
    assert "Two-factor authentication is on." in await text(page, "main")
    assert await page.locator(".codes li").count() == 10
    assert await serious_violations(page) == []

    await page.get_by_role("button", name="Sign out").click()
    await page.goto("/sign-in")
    await page.get_by_label("E-mail").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    assert await text(page, "h1") == "Enter your code"
    # The next time step: the enrolment's code was spent, and a spent step is never reused.
    await page.get_by_label("Code").fill(totp.at(now + totp.interval))
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(re.compile(r".*/$"))
    assert "Welcome back, Tom" in await text(page, "h1")


async def test_a_forgotten_password_is_reset_through_the_e_mailed_link(
    page: Any, server: LiveServer
) -> None:
    email = await sign_up_and_verify(page, server, "Ivy")
    await page.get_by_role("link", name="Reset it").click()
    await page.get_by_label("E-mail", exact=True).fill(email)
    await page.get_by_role("button", name="E-mail me a link").click()
    assert "a reset link is on its way" in await text(page, "main")
    await page.goto(server.last_link(email))
    assert await page.locator("[data-request-link]").is_hidden()
    new_password = "a brand new passphrase for ivy"
    await page.get_by_label("New password").fill(new_password)
    await page.get_by_role("button", name="Set the new password").click()
    await page.wait_for_url("**/sign-in?reset=1")
    assert await serious_violations(page) == []
    await page.get_by_label("E-mail").fill(email)
    await page.get_by_label("Password").fill(new_password)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(re.compile(r".*/$"))
    assert "Welcome back, Ivy" in await text(page, "h1")


async def test_statuses_change_and_undo_with_the_keyboard_alone(
    page: Any, server: LiveServer
) -> None:
    email = await sign_up_and_verify(page, server, "Kim")
    await sign_in(page, email)
    await page.goto("/roadmaps/backend")
    await page.keyboard.press("j")  # the first topic of the tree
    first = page.locator("li.topic").first
    assert await first.locator("a.title").evaluate("link => link === document.activeElement")
    await page.keyboard.press("j")
    second = page.locator("li.topic").nth(1)
    await page.keyboard.press("d")
    await page.wait_for_function(
        "el => el.dataset.status === 'done'", arg=await second.element_handle()
    )
    await page.keyboard.press("k")
    await page.keyboard.press("i")
    await page.wait_for_function(
        "el => el.dataset.status === 'in_progress'", arg=await first.element_handle()
    )
    await page.keyboard.press("u")
    await page.wait_for_function(
        "el => el.dataset.status === 'todo'", arg=await first.element_handle()
    )
    assert await second.get_attribute("data-status") == "done"
    # Shift+Tab from a topic reaches its own status buttons (the last is "Skipped"); Enter
    # presses it.
    await page.keyboard.press("Shift+Tab")
    focused = await page.evaluate("document.activeElement.getAttribute('title')")
    assert focused == "Skipped"
    await page.keyboard.press("Enter")
    await page.wait_for_function(
        "el => el.dataset.status === 'skipped'", arg=await first.element_handle()
    )
    await page.reload()
    assert await second.get_attribute("data-status") == "done"
    assert await first.get_attribute("data-status") == "skipped"


async def test_an_owner_invites_and_the_invitee_joins_through_the_e_mailed_link(
    page: Any, chromium: Any, server: LiveServer, shots: Path
) -> None:
    owner = await sign_up_and_verify(page, server, "Olu")
    await sign_in(page, owner)
    slug = f"cohort-{uuid.uuid4().hex[:6]}"
    await page.get_by_role("link", name="Organisations").click()
    await page.get_by_label("Name", exact=True).fill("Cohort Seven")
    await page.get_by_label("Short name").fill(slug)
    await page.get_by_role("button", name="Create").click()
    await page.wait_for_url(f"**/orgs/{slug}")
    csrf = await page.locator('input[name="csrf_token"]').first.input_value()
    imported = await page.context.request.post(
        f"/v1/roadmaps/import?visibility=organisation&org={slug}&slug={slug}-basics",
        headers={"x-csrf-token": csrf, "content-type": "text/markdown", "origin": server.url},
        data="# Cohort basics\n\n- [ ] Read the handbook\n- [ ] Pair on a ticket\n",
    )
    assert imported.status == 201, await imported.text()

    invitee_context = await chromium.new_context(base_url=server.url)
    invitee = await invitee_context.new_page()
    try:
        email = await sign_up_and_verify(invitee, server, "Ines")
        await page.get_by_label("E-mail").fill(email)
        await page.get_by_role("button", name="Send invitation").click()
        assert f"Invitation sent to {email}" in await text(page, "main")
        await sign_in(invitee, email)
        await invitee.goto(server.last_link(email))
        await invitee.wait_for_url(f"**/orgs/{slug}")
        assert await text(invitee, "h1") == "Cohort Seven"
        assert "Ines" in await text(invitee, "#members-h + ul")
        await invitee.get_by_role("link", name="Cohort basics").click()
        assert await text(invitee, "h1") == "Cohort basics"
        assert await serious_violations(invitee) == []
    finally:
        await invitee_context.close()
    await page.reload()
    assert "Ines" in await text(page, "#members-h + ul")
    assert await page.get_by_role("link", name="Cohort basics").is_visible()
    await screenshots(page, "organisation", shots)
    assert await serious_violations(page) == []
