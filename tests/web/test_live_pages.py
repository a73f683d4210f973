"""The cohort's live pages in Chromium, with two people in two browser contexts: the study
room's chat, presence and typing over the WebSocket; the feed and the mentors' view over the
event stream; the chat with the keyboard alone; axe-core on each page, light and dark."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.support.web import LiveServer, screenshots, serious_violations
from tests.web.test_journeys import sign_in, sign_up_and_verify, text


@dataclass
class Cohort:
    slug: str
    owner: Any  # Ada's tab: she created the organisation
    member: Any  # Ben's tab, in his own browser context: a learner


def watch_console(tab: Any, errors: list[str]) -> None:
    tab.on("pageerror", lambda error: errors.append(str(error)))
    tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)


@pytest.fixture
async def cohort(
    page: Any, chromium: Any, server: LiveServer, console_errors: list[str]
) -> AsyncIterator[Cohort]:
    """Ada owns a new organisation with the built-in roadmap assigned; Ben joined it."""
    slug = f"cohort-{uuid.uuid4().hex[:6]}"
    await sign_in(page, await sign_up_and_verify(page, server, "Ada"))
    await page.goto("/orgs")
    await page.get_by_label("Name", exact=True).fill("Study Group")
    await page.get_by_label("Short name").fill(slug)
    await page.get_by_role("button", name="Create").click()
    await page.wait_for_url(f"**/orgs/{slug}")

    context = await chromium.new_context(base_url=server.url, viewport=page.viewport_size)
    context.set_default_timeout(15_000)
    member = await context.new_page()
    watch_console(member, console_errors)
    try:
        email = await sign_up_and_verify(member, server, "Ben")
        await page.get_by_label("E-mail").fill(email)
        await page.get_by_role("button", name="Send invitation").click()
        await sign_in(member, email)
        await member.goto(server.last_link(email))
        await member.wait_for_url(f"**/orgs/{slug}")

        await page.goto(f"/orgs/{slug}")
        await page.get_by_label("Roadmap", exact=True).select_option("backend")
        await page.get_by_role("button", name="Assign").click()
        await page.wait_for_url(f"**/orgs/{slug}?assigned=1*")
        yield Cohort(slug, page, member)
    finally:
        await context.close()


async def live(tab: Any) -> None:
    """Wait until the page's live connection is up (its status line says so)."""
    await tab.wait_for_function(
        "() => (document.querySelector('[data-live-state]') || {}).textContent?.startsWith('Live')"
    )


async def axe_light_and_dark(tab: Any) -> None:
    assert await serious_violations(tab) == []
    await tab.emulate_media(color_scheme="dark")
    assert await serious_violations(tab) == []
    await tab.emulate_media(color_scheme="light")


async def test_a_message_sent_by_one_member_appears_for_the_other_with_presence_and_typing(
    cohort: Cohort, shots: Path
) -> None:
    room = f"/orgs/{cohort.slug}/rooms/lobby"
    ada, ben = cohort.owner, cohort.member
    await ada.goto(room)
    await live(ada)
    await ben.goto(room)
    await live(ben)
    for tab in (ada, ben):  # presence: both are here, on both pages
        for name in ("Ada", "Ben"):
            item = tab.locator("[data-presence] li", has_text=name)
            await item.locator(".state", has_text="here").wait_for()

    await ben.get_by_role("textbox", name="Message").press_sequentially("hello")
    await ada.locator("[data-typing]", has_text="Ben is typing…").wait_for()
    await ben.get_by_role("textbox", name="Message").press_sequentially(" from Ben")
    await ben.get_by_role("button", name="Send").click()
    message = ada.locator(".messages li", has_text="hello from Ben")
    await message.wait_for()
    assert await message.locator(".author").inner_text() == "Ben"
    assert await ben.get_by_role("textbox", name="Message").input_value() == ""
    assert await ada.locator("[data-typing]").inner_text() == ""

    await ada.get_by_role("textbox", name="Message").fill("welcome, Ben")
    await ada.get_by_role("textbox", name="Message").press("Enter")
    await ben.locator(".messages li", has_text="welcome, Ben").wait_for()
    # A learner has no delete buttons; the owner has one per message.
    assert await ben.get_by_role("button", name="Delete the message from Ben").count() == 0
    await screenshots(ada, "room", shots)
    await axe_light_and_dark(ada)
    await axe_light_and_dark(ben)

    await ben.close()  # Ben leaves: his presence goes with his socket
    await (
        ada.locator("[data-presence] li", has_text="Ben")
        .locator(".state", has_text="away")
        .wait_for()
    )


async def test_the_chat_works_with_the_keyboard_alone(cohort: Cohort) -> None:
    room = f"/orgs/{cohort.slug}/rooms/lobby"
    ada, ben = cohort.owner, cohort.member
    await ben.goto(room)
    await live(ben)
    await ada.goto(room)
    await live(ada)

    await tab_until(ben, "document.activeElement.name === 'body'")
    await ben.keyboard.type("typed without a mouse")
    await ben.keyboard.press("Enter")
    await ada.locator(".messages li", has_text="typed without a mouse").wait_for()
    assert await ben.evaluate("document.activeElement.name") == "body"  # ready for the next

    # The owner deletes it from the keyboard: Tab to its Delete button, Enter.
    await tab_until(ada, "document.activeElement.textContent === 'Delete'")
    await ada.keyboard.press("Enter")
    deleted = ben.locator(".messages li.deleted")
    await deleted.wait_for()
    assert await deleted.inner_text() != ""
    assert "typed without a mouse" not in await text(ben, ".messages")


async def tab_until(tab: Any, condition: str, most: int = 60) -> None:
    for _ in range(most):
        await tab.keyboard.press("Tab")
        if await tab.evaluate(f"() => {condition}"):
            return
    raise AssertionError(f"Tab never reached an element where {condition}")


async def test_a_topic_marked_done_appears_live_in_the_feed_and_the_mentors_view(
    cohort: Cohort, shots: Path
) -> None:
    ada, ben = cohort.owner, cohort.member
    await ada.goto(f"/orgs/{cohort.slug}/progress")
    await live(ada)
    figures = ada.locator("tr", has_text="Ben").locator("[data-figures-of]")
    assert (await figures.inner_text()).startswith("0/")
    feed = await ada.context.new_page()
    await feed.goto(f"/orgs/{cohort.slug}/feed")
    await live(feed)

    await ben.goto("/roadmaps/backend")
    topic = ben.locator("section#t-networking li.topic").first
    title = await topic.locator("a.title").inner_text()
    await topic.get_by_role("button", name="Done").click()

    await feed.locator(".feed li", has_text=f"Ben finished {title}").wait_for()
    # The table is fetched again and swapped, so the locator is asked afresh.
    await ada.locator("tr", has_text="Ben").locator("[data-figures-of]", has_text="1/").wait_for()
    await screenshots(feed, "feed", shots)
    await screenshots(ada, "mentor", shots)
    await axe_light_and_dark(feed)
    await axe_light_and_dark(ada)
    await feed.close()

    await ben.goto("/")
    assigned = ben.locator("section", has=ben.get_by_role("heading", name="Assigned to me"))
    assert "Backend" in await assigned.inner_text()
    await axe_light_and_dark(ben)


async def test_a_dropped_room_socket_reconnects_and_gets_exactly_what_it_missed(
    cohort: Cohort,
) -> None:
    """Ben's socket drops (a restart's 1012); Ada writes while he is away; his page reconnects
    with a fresh ticket and `last_seq`, and shows the missed message once, in order."""
    room = f"/orgs/{cohort.slug}/rooms/lobby"
    ada, ben = cohort.owner, cohort.member
    sockets: list[tuple[str, Any, Any]] = []
    ben_may_return = asyncio.Event()

    async def through_the_test(ws: Any) -> None:
        if sockets:  # the reconnection waits until Ada has written while Ben was away
            await ben_may_return.wait()
        sockets.append((ws.url, ws, ws.connect_to_server()))

    await ben.route_web_socket(re.compile(r".*/v1/rooms/connect\?.*"), through_the_test)
    await ben.goto(room)
    await live(ben)
    await ada.goto(room)
    await live(ada)
    await ada.get_by_role("textbox", name="Message").fill("before the drop")
    await ada.get_by_role("textbox", name="Message").press("Enter")
    await ben.locator(".messages li", has_text="before the drop").wait_for()

    first_url, page_side, server_side = sockets[0]
    await page_side.close(code=1012, reason="server shutting down")
    await server_side.close()
    await ada.get_by_role("textbox", name="Message").fill("while Ben was away")
    await ada.get_by_role("textbox", name="Message").press("Enter")
    await ada.locator(".messages li", has_text="while Ben was away").wait_for()
    ben_may_return.set()

    await ben.locator(".messages li", has_text="while Ben was away").wait_for()
    second_url = sockets[1][0]
    assert "last_seq=1" in second_url
    assert query_of(second_url)["ticket"] != query_of(first_url)["ticket"]
    bodies = await ben.locator(".messages li .body").all_inner_texts()
    assert bodies == ["before the drop", "while Ben was away"]


def query_of(url: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}
