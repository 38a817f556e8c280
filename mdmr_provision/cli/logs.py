"""Where a long-running command's log lines go while it runs: stdout, then back as they were."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def log_to_stdout(*names: str) -> Iterator[None]:
    """Print the named loggers' INFO lines on stdout while the block runs.

    ``receive`` and ``simulate`` show each message as it arrives. The loggers are put back
    afterwards (handler, level, propagation), so a caller that runs the CLI in-process (a
    test, an embedding script) keeps its own logging and is not left writing to a stream
    that has since been closed.
    """
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    loggers = [logging.getLogger(name) for name in names]
    saved = [(logger.level, logger.propagate) for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    try:
        yield
    finally:
        for logger, (level, propagate) in zip(loggers, saved, strict=True):
            logger.removeHandler(handler)
            logger.setLevel(level)
            logger.propagate = propagate
        with contextlib.suppress(ValueError, OSError):
            handler.flush()
