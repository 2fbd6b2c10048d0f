"""`make demo` (the ward simulator, suture.ward) prints the operator UI's address and a sign-in
made for the run (``WardScheduler.ui_account``): that sign-in opens the UI of the ward's own
scheduler over HTTP, shows its fleet, rollouts and audit log, and changes nothing."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
from sched_world import CLASS_ID, VENDOR_ID
from suture.keys import generate_private_key
from suture.scheduler.schemas import DeviceCreate
from suture.scheduler.services import devices
from suture.ward.clock import ScaledClock
from suture.ward.server import WardScheduler


def test_the_demos_sign_in_watches_the_ward(tmp_path: Path) -> None:
    with WardScheduler(tmp_path / "ward", ScaledClock(), generate_private_key("ES256")) as sched:
        devices.add_device(sched.sessions(), create=DeviceCreate(
            id="bed-001", board="sim", vendor_id=VENDOR_ID, class_id=CLASS_ID, ward="ICU",
            groups=["ward"], installed={"app": 1}), root_secret=bytes.fromhex(sched.root_secret),
            actor=sched.team.device_manager, now=sched.clock.now())
        name, password = sched.ui_account()
        with httpx.Client(base_url=sched.url, follow_redirects=False, timeout=30) as http:
            assert http.get("/").headers["location"] == "/signin"
            form = http.get("/signin").text
            token = re.search(r'name="signin_token" value="([^"]+)"', form)
            assert token is not None
            r = http.post("/signin", data={"name": name, "password": password,
                                           "signin_token": token.group(1), "next": "/rollouts"})
            assert (r.status_code, r.headers["location"]) == (303, "/rollouts")
            fleet = http.get("/fleet")
            assert fleet.status_code == 200
            assert "bed-001" in fleet.text
            for page in ("/rollouts", "/releases", "/audit"):
                assert http.get(page).status_code == 200, page
            assert "Chain verified" in http.get("/audit").text
            # a watcher: it neither plans, approves, imports nor touches a device
            for page in ("/rollouts/new", "/releases/import", "/fleet/bed-001/confirm/rotate"):
                assert http.get(page).status_code == 403, page
        with httpx.Client(base_url=sched.url, timeout=30) as other:
            token = re.search(r'name="signin_token" value="([^"]+)"', other.get("/signin").text)
            assert token is not None
            wrong = other.post("/signin", data={"name": name, "password": password + "x",
                                                "signin_token": token.group(1)})
            assert wrong.status_code == 401
