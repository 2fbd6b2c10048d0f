"""The board tools' own output, kept off suture's terminal.

esptool, adafruit-nrfutil and pyocd print and log as command-line tools do. Driven through
their APIs by `suture board …`, what they say is collected instead: their last lines go into
suture's one-line error when they fail, and their progress reaches suture's progress bar through
a :data:`StepProgress` callback.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator

StepProgress = Callable[[str, int, int], None]  # (description, done, total)

# How many of a tool's last lines an error quotes.
TAIL_LINES = 3


class ToolLog(logging.Handler):
    """The records a tool logs while suture drives it, as lines."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage().strip()
        if text:
            self.lines.extend(line.strip() for line in text.splitlines() if line.strip())

    def add(self, text: str) -> None:
        """A line the tool printed rather than logged."""
        self.lines.extend(line.strip() for line in text.splitlines() if line.strip())

    def tail(self, count: int = TAIL_LINES) -> str:
        """The last ``count`` lines, joined: what an error quotes."""
        return "; ".join(self.lines[-count:])


@contextlib.contextmanager
def captured_logs(*names: str, level: int = logging.INFO) -> Iterator[ToolLog]:
    """Collect what the loggers ``names`` (a tool's package loggers) log, at ``level`` and above,
    instead of letting it reach the terminal; the previous settings come back afterwards."""
    handler = ToolLog()
    saved = []
    for name in names:
        logger = logging.getLogger(name)
        saved.append((logger, logger.propagate, logger.level))
        logger.addHandler(handler)
        logger.propagate = False
        logger.setLevel(level)
    try:
        yield handler
    finally:
        for logger, propagate, old_level in saved:
            logger.removeHandler(handler)
            logger.propagate = propagate
            logger.setLevel(old_level)
