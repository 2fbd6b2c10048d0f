"""The UI in a real browser (Debian's chromium through Playwright): operators sign in, one
creates a rollout through the form after previewing its plan, an approver denies it with a
reason, its creator changes it, two approvers approve it with their reasons, it is started and
watched completing on simulated devices without reloading the page, and the audit page shows
who did what with the chain verified. Each page is photographed at a desk's size
(1280x800) and a tablet's into the test's folder; ``SUTURE_UI_SCREENSHOTS=DIR`` also writes
the desk set to DIR (docs/img holds the set docs/operator-ui.md shows)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser import CHROMIUM, CHROMIUM_ARGS, DESK, TABLET, serve
from fastapi import FastAPI
from playwright.sync_api import Browser, Page, expect, sync_playwright
from sched_world import AUDIT_KEY, World
from sqlalchemy import Engine
from suture.scheduler.api.app import create_app
from suture.scheduler.clock import ManualClock
from suture.scheduler.config import Settings
from suture.scheduler.policies.decide import Action
from suture.scheduler.schemas import RolloutUpdate
from suture.scheduler.services import rollouts
from ui_accounts import PASSWORD, give_password

pytestmark = pytest.mark.slow

#: How long the browser waits for a page or an element (a loaded CI machine is slow).
WAIT_MS = 30_000
expect.set_options(timeout=WAIT_MS)


@pytest.fixture
def browser() -> Iterator[Browser]:
    assert CHROMIUM.exists(), "chromium is installed by tools/install-system-deps.sh"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def served(ui_engine: Engine, ui_settings: Settings, ui_clock: ManualClock,
           ui_world: World) -> Iterator[str]:
    app: FastAPI = create_app(ui_settings, clock=ui_clock, engine=ui_engine,
                              audit_key=AUDIT_KEY)
    with serve(app) as url:
        yield url


#: axe-core, installed from npm by tools/install-system-deps.sh (tests/ui/axe/package-lock.json).
AXE = Path(__file__).resolve().parent / "axe" / "node_modules" / "axe-core" / "axe.min.js"


def accessibility_violations(page: Page) -> list[str]:
    """axe-core's serious and critical violations of WCAG 2.x A and AA on the page."""
    assert AXE.exists(), "axe-core is installed by tools/install-system-deps.sh (npm ci)"
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    found = page.evaluate("""async () => {
        const result = await axe.run(document, {runOnly: {type: 'tag',
            values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}, resultTypes: ['violations']});
        return result.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')
            .map(v => v.id + ' (' + v.impact + '): ' + v.help + ' at '
                 + v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(', '));
    }""")
    return [str(v) for v in found]


def overflowing(page: Page) -> list[str]:
    """The cards (and the page's main part) whose content is wider than they are: text that
    runs out of its box, over its neighbour or off the screen (a table that scrolls on its
    own, or a ``pre``, does not count)."""
    found = page.evaluate("""() => [...document.querySelectorAll('main, .card')]
        .filter(el => el.scrollWidth > el.clientWidth + 1)
        .map(el => (el.querySelector('h1, h2') || el).textContent.trim().slice(0, 60)
             + ': ' + el.scrollWidth + 'px in ' + el.clientWidth + 'px')""")
    return [str(v) for v in found]


class Camera:
    """Screenshots of each page: into the test's folder, and into ``SUTURE_UI_SCREENSHOTS``;
    each page is also checked by axe-core, at both sizes."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        extra = os.environ.get("SUTURE_UI_SCREENSHOTS")
        self.extra = Path(extra) if extra else None
        self.taken: list[Path] = []

    def shoot(self, page: Page, name: str) -> None:
        page.set_viewport_size(DESK)
        assert accessibility_violations(page) == [], name
        assert overflowing(page) == [], name
        path = self.folder / f"{name}.png"
        page.screenshot(path=str(path), full_page=False)
        self.taken.append(path)
        if self.extra is not None:
            self.extra.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(self.extra / f"ui-{name}.png"), full_page=False)
        page.set_viewport_size(TABLET)
        tablet = self.folder / f"{name}-tablet.png"
        page.screenshot(path=str(tablet), full_page=True)
        self.taken.append(tablet)
        # readable on a tablet: nothing wider than the screen but the tables' own scrolling
        overflow = page.evaluate("document.documentElement.scrollWidth")
        assert overflow <= TABLET["width"] + 1, f"{name}: the page is {overflow}px wide"
        assert overflowing(page) == [], f"{name} (tablet)"
        assert accessibility_violations(page) == [], f"{name} (tablet)"
        page.set_viewport_size(DESK)


def sign_in(browser: Browser, base: str, world: World, name: str) -> Page:
    give_password(world, name)
    # axe-core is injected as an inline script, which the UI's Content-Security-Policy refuses
    page = browser.new_context(viewport=DESK, base_url=base, bypass_csp=True).new_page()
    page.set_default_timeout(WAIT_MS)
    page.goto("/rollouts")
    expect(page).to_have_url(re.compile(r"/signin\?next=/rollouts$"))
    page.get_by_label("Operator name").fill(name)
    page.get_by_label("Password").fill(PASSWORD)
    page.keyboard.press("Enter")  # the keyboard alone signs in
    expect(page).to_have_url(re.compile(r"/rollouts$"))
    expect(page.locator("header")).to_contain_text(name)
    return page


def test_a_rollout_from_form_to_completion(browser: Browser, served: str, ui_world: World,
                                           ui_clock: ManualClock, tmp_path: Path) -> None:
    camera = Camera(tmp_path)
    world = ui_world
    pumps = [world.device(f"pump-{i}", criticality=4 if i == 1 else 2, ward="ICU",
                          location=f"bed {i}") for i in (1, 2, 3)]
    world.release(2)
    target = world.release(3)

    alice = sign_in(browser, served, world, "alice")
    alice.goto("/fleet")
    expect(alice.locator("table.grid")).to_contain_text("pump-3")
    camera.shoot(alice, "fleet")
    # the check sees what it is for: an image without a text alternative is critical
    alice.evaluate("document.body.insertAdjacentHTML('beforeend', "
                   "'<img src=\"/ui/static/favicon.svg\">')")
    assert any(v.startswith("image-alt") for v in accessibility_violations(alice))
    alice.get_by_label("Criticality at least").select_option("4")
    alice.get_by_role("button", name="Apply").click()
    expect(alice.locator("table.grid caption")).to_contain_text("1 of 3 devices")
    alice.goto("/fleet/pump-1")
    camera.shoot(alice, "device")
    alice.goto(f"/releases/{target.id}")
    expect(alice.locator(".verdict")).to_contain_text("Verified")
    camera.shoot(alice, "release")

    # the form, its plan, then the rollout
    alice.goto("/rollouts/new")
    alice.get_by_label("Name").fill("ICU pumps to app 3")
    alice.get_by_label("Release").select_option(str(target.id))
    alice.get_by_label("Target groups").fill("ward-3")
    alice.locator("#waves").fill("34%, 100%")
    camera.shoot(alice, "rollout-form")
    alice.get_by_role("button", name="Preview the plan").click()
    expect(alice.get_by_role("heading", name="Plan: ICU pumps to app 3")).to_be_visible()
    expect(alice.locator("main")).to_contain_text("two-person rule")
    expect(alice.locator("main")).to_contain_text("app #3")
    camera.shoot(alice, "rollout-preview")
    alice.get_by_role("button", name="Create the rollout").click()
    expect(alice).to_have_url(re.compile(r"/rollouts/\d+$"))
    rollout_id = int(alice.url.rsplit("/", 1)[1])
    expect(alice.locator("#approval-count")).to_contain_text("0 of 2")

    # bob denies it, saying why, and confirms
    bob = sign_in(browser, served, world, "bob")
    bob.goto("/approvals")
    bob.get_by_label(f"Reason for rollout {rollout_id}").fill("one pump per wave, please")
    bob.get_by_role("button", name=f"Deny rollout {rollout_id} as bob").click()
    expect(bob.get_by_role("heading", name=f"Deny rollout {rollout_id}?")).to_be_visible()
    expect(bob.locator("main")).to_contain_text("your reason: one pump per wave, please")
    bob.get_by_role("button", name=f"Deny rollout {rollout_id}").click()
    expect(bob).to_have_url(re.compile(r"/approvals$"))
    expect(bob.locator("main")).to_contain_text("one pump per wave, please")
    expect(bob.locator("main")).to_contain_text("nothing to approve until the rollout is changed")
    bob.context.close()

    # its creator sees the denial (no start offered), and changes the rollout
    alice.reload()
    expect(alice.locator("#denials")).to_contain_text("denied by bob")
    expect(alice.locator("#denials")).to_contain_text("one pump per wave, please")
    expect(alice.get_by_role("link", name="Start…")).to_have_count(0)
    camera.shoot(alice, "rollout-denied")
    rollouts.update_rollout(world.session(), rollout_id=rollout_id,
                            change=RolloutUpdate(waves=["1", "2", "100%"]), actor=world.alice,
                            now=ui_clock.now())
    expect(alice.locator("#denials")).to_contain_text("cleared when alice changed the rollout")

    # two approvers, each in their own browser session, each confirming with a reason
    for name in ("bob", "carol"):
        approver = sign_in(browser, served, world, name)
        approver.goto("/approvals")
        approver.get_by_label(f"Reason for rollout {rollout_id}").fill(f"{name}: three waves")
        button = approver.get_by_role("button", name=f"Approve rollout {rollout_id} as {name}")
        if name == "carol":
            expect(approver.locator("main")).to_contain_text("1 of 2")
            expect(approver.locator("main")).to_contain_text("bob: three waves")
            camera.shoot(approver, "approvals")
        button.click()
        expect(approver.get_by_role("heading", name=f"Approve rollout {rollout_id}?")
               ).to_be_visible()
        approver.get_by_role("button", name=f"Approve rollout {rollout_id}").click()
        expect(approver).to_have_url(re.compile(r"/approvals$"))
        expect(approver.locator("main")).to_contain_text("You approved it")
        approver.context.close()

    # start, confirmed
    alice.goto(f"/rollouts/{rollout_id}")
    expect(alice.locator("#approval-count")).to_contain_text("2 of 2")
    # with the keyboard alone: the link by Enter, the confirmation's button by Tab and Enter,
    # each focused element outlined
    alice.get_by_role("link", name="Start…").focus()
    alice.keyboard.press("Enter")
    expect(alice.get_by_role("heading", name=f"Start rollout {rollout_id}?")).to_be_visible()
    confirm = alice.get_by_role("button", name="Start the rollout")
    for _ in range(20):
        alice.keyboard.press("Tab")
        if confirm.evaluate("b => b === document.activeElement"):
            break
    expect(confirm).to_be_focused()
    assert confirm.evaluate("b => parseFloat(getComputedStyle(b).outlineWidth)") >= 2
    alice.keyboard.press("Enter")
    expect(alice.locator("#rollout-state")).to_contain_text("running")

    # the devices update while the page stays open: it must follow without a reload
    alice.evaluate("window.__notReloaded = true")
    for _ in range(8):
        for pump in pumps:
            pump.update_fully()
        world.advance()
        ui_clock.advance(30)
        if all(p.action() == Action.NONE for p in pumps) and \
                world.status(rollout_id).rollout.state == "completed":
            break
    assert world.status(rollout_id).rollout.state == "completed"
    expect(alice.locator("#rollout-state")).to_contain_text("completed", timeout=WAIT_MS)
    assert alice.evaluate("window.__notReloaded") is True
    expect(alice.locator("#rollout-live")).to_contain_text("every wave finished")
    expect(alice.locator("#rollout-live")).to_contain_text(re.compile(r"3\W+succeeded"))
    expect(alice.locator("#approval-count")).to_contain_text("2 of 2")
    camera.shoot(alice, "rollout-live")

    # the audit page: who did what, the chain verified
    alice.get_by_role("link", name="Audit").click()
    expect(alice.locator("#audit-verdict")).to_contain_text("Chain verified")
    alice.get_by_label("Subject contains").fill(f"rollout:{rollout_id}")
    alice.get_by_role("button", name="Filter").click()
    table = alice.locator("table.grid")
    for who, what in (("alice", "rollout.create"), ("bob", "rollout.deny"),
                      ("alice", "rollout.update"), ("bob", "rollout.approve"),
                      ("carol", "rollout.approve"), ("alice", "rollout.start"),
                      ("scheduler", "rollout.complete")):
        expect(table.locator("tr", has_text=what).filter(has_text=who).first).to_be_visible()
    camera.shoot(alice, "audit")

    # the API's documentation renders from the scheduler's own assets
    alice.goto("/docs")
    expect(alice.locator(".swagger-ui .info")).to_contain_text("suture scheduler")
    alice.goto("/audit")

    # keyboard: the skip link is the first stop and leads to the content
    alice.keyboard.press("Tab")
    expect(alice.locator("a.skip")).to_be_focused()
    assert len(camera.taken) == 2 * 9
    assert all(p.stat().st_size > 10_000 for p in camera.taken)
