"""The UI tests' operators sign in with a password: ``give_password`` gives one to an account of
tests/scheduler's world (argon2 costs time, so only the accounts a test signs in get one)."""

from __future__ import annotations

from sched_world import ADMIN, World
from suture.scheduler.services import operators

#: Every account's password in the UI tests.
PASSWORD = "a ward's long password"


def give_password(world: World, name: str) -> None:
    """``name`` (one of ``ACCOUNTS``) signs in with ``PASSWORD`` from now on (argon2 costs
    time: only the accounts a test signs in get one)."""
    given: set[str] = world.__dict__.setdefault("ui_passwords", set())
    if name not in given:
        operators.set_password(world.session(), name=name, new_password=PASSWORD,
                               actor=world.op(ADMIN), now=world.clock.now())
        given.add(name)
