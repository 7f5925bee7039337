"""Plain, one-line logs. Secrets never reach them: settings are SecretStr and never logged."""

from __future__ import annotations

import logging

_configured = False


def configure_logging(level: str = "INFO") -> None:
    global _configured
    if _configured:
        return
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # The drivers are chatty at INFO; their warnings and errors still show.
    for noisy in ("pymongo", "httpx", "azure"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    _configured = True
