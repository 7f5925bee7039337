"""The operator kit's one error: what went wrong and what to do, printed as one line."""

from __future__ import annotations


class OpsError(Exception):
    """An operator mistake or an unreachable server, with a message that says what to do."""

    exit_code = 2  # a usage or input error; subclasses for "ran, but failed" use 1
