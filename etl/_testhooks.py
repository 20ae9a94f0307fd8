"""Fault injection for the kill tests: the one place where the product can be made to fail on purpose.

The kill tests run `etc2calm ingest` in a subprocess with ``ETC2CALM_TEST_CRASH=<point>`` in its
environment (config.settings.ENV_TEST_CRASH); the ingest calls `checkpoint(<point>)` at each named
point of a commit, and the process dies there as under SIGKILL (exit status 137, no clean-up, no
``finally``). ``stall`` makes a worker wait after staging a file, so that a test's own SIGKILL lands
mid-ingest however fast the machine is. Unset (always, outside the tests), a checkpoint does nothing.

Points, in the order an ingest passes them: ``stage`` (a worker staged a file), ``journal`` (the
commit's journal is about to be written), ``apply`` (half of the journal's renames done),
``renamed`` (all done), ``db`` (the database committed), ``snapshot`` (the snapshot replaced),
``deletes`` (half of the replaced files deleted).
"""

from __future__ import annotations

import os
import time

from config.settings import ENV_TEST_CRASH

STALL = "stall"
STALL_POINT = "stage"  # where a stalled worker waits: after staging a file, before its result is returned
STALL_SECONDS = 3600


def checkpoint(point: str) -> None:
    """Die here (exit status 137, no clean-up) when the tests asked for `point`; wait when they asked to stall."""
    wanted = os.environ.get(ENV_TEST_CRASH)
    if not wanted:
        return
    if wanted == point:
        os._exit(137)
    if wanted == STALL and point == STALL_POINT:
        time.sleep(STALL_SECONDS)


__all__ = ["checkpoint"]
