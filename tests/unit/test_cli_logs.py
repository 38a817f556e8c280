"""The stdout log of ``receive``/``simulate`` is undone when the command returns."""

from __future__ import annotations

import logging

import pytest

from mdmr_provision.cli.logs import log_to_stdout


def test_log_lines_go_to_stdout_while_the_block_runs(capsys: pytest.CaptureFixture[str]) -> None:
    with log_to_stdout("mdmr_provision.test_logs"):
        logging.getLogger("mdmr_provision.test_logs").info("message %d", 7)
    assert "message 7" in capsys.readouterr().out


def test_the_logger_is_put_back_even_when_the_block_raises() -> None:
    logger = logging.getLogger("mdmr_provision.test_logs_back")
    logger.setLevel(logging.WARNING)
    before = (logger.level, logger.propagate, list(logger.handlers))
    with pytest.raises(KeyboardInterrupt), log_to_stdout(logger.name):
        assert not logger.propagate
        raise KeyboardInterrupt
    assert (logger.level, logger.propagate, list(logger.handlers)) == before
