"""Test helpers for the DDI API: a device with a target token, a release and a running
rollout in the world of ``sched_world``, and a client speaking DDI over the HTTP app."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sched_world import Api, World
from suture.scheduler.ddi import service

FIXTURES = Path(__file__).parent / "fixtures"
TENANT = "DEFAULT"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / f"{name}.json").read_text())


@dataclass
class DdiClient:
    """One device's DDI requests, with its token."""

    api: Api
    device_id: str
    token: str
    tenant: str = TENANT
    scheme: str = "TargetToken"
    polls: list[dict[str, Any]] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"/{self.tenant}/controller/v1/{self.device_id}"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"{self.scheme} {self.token}"}

    def get(self, path: str = "", **kw: Any) -> httpx.Response:
        extra = kw.pop("headers", {})
        return self.api.client.get(self.base + path, headers={**self.headers, **extra}, **kw)

    def send(self, method: str, path: str, body: Any) -> httpx.Response:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        return self.api.client.request(method, self.base + path, content=data, headers={
            **self.headers, "Content-Type": "application/json"})

    def poll(self) -> dict[str, Any]:
        r = self.get()
        assert r.status_code == 200, r.text
        doc: dict[str, Any] = r.json()
        self.polls.append(doc)
        return doc

    def link(self, doc: dict[str, Any], name: str) -> str | None:
        """A link of a DDI document, relative to the app (the path and query)."""
        href = doc.get("_links", {}).get(name, {}).get("href")
        if href is None:
            return None
        url = httpx.URL(href)
        path = url.raw_path.decode()
        assert path.startswith(self.base), href
        return path[len(self.base):]

    def feedback(self, action: str, execution: str, finished: str = "none",
                 **status: Any) -> httpx.Response:
        return self.send("POST", f"/deploymentBase/{action}/feedback", {
            "status": {"execution": execution, "result": {"finished": finished}, **status}})


def linux_device(world: World, api: Api, device_id: str = "lin-01", *,
                 tenant: str = TENANT, **kw: Any) -> DdiClient:
    """A registered device with a DDI target token (kind ``linux``)."""
    world.device(device_id, **kw)
    token = service.issue_target_token(world.session(), device_id=device_id, tenant=tenant,
                                       kind="linux", actor=world.alice, now=world.clock.now())
    return DdiClient(api, device_id, token, tenant)


def action_of(path: str) -> str:
    """``/deploymentBase/7?c=...`` -> ``7``"""
    return path.split("?")[0].rsplit("/", 1)[1]
