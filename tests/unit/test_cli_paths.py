"""Paths the file system refuses (NUL byte, name too long): one line, exit 1, never exit 3."""

from __future__ import annotations

from pathlib import Path

import pytest

from mdmr_provision.cli import main
from tests.support.planner import write_inventory

LONG = "y" * 300  # longer than any file system allows for one name (255)


def _one_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1, err
    return err[0]


@pytest.mark.parametrize(
    ("value", "shown", "reason"),
    [
        ('"c\\0.pem"', "'c\\x00.pem'", "contains a NUL byte"),
        (LONG, repr(LONG[:57] + "..."), "File name too long"),
    ],
)
def test_inventory_path_the_os_refuses(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], value: str, shown: str, reason: str
) -> None:
    # Was: exit 3 (ValueError / OSError from resolving the path).
    path = write_inventory(tmp_path)
    path.write_text(path.read_text().replace("cert: c.pem", f"cert: {value}"))
    assert main(["validate", "-i", str(path)]) == 1
    assert capsys.readouterr().err.splitlines() == [
        f"error: {path}:7:13: organisations.ORG10000.certificate.cert: "
        f"certificate file {shown} is not a usable path: {reason}",
        f"{path}: invalid (1 error)",
    ]


@pytest.mark.parametrize(
    "argv",
    [
        ["validate", "-i", "{long}"],
        ["testfile", "--for", "ORG10000", "--sender", "ORG10000", "--out", "{long}"],
        ["cert", "request", "--org", "ORG99999", "--out", "{long}", "--no-encrypt"],
    ],
)
def test_command_line_path_too_long(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    # Was: exit 3 (OSError ENAMETOOLONG from Path.exists / mkdir).
    long = str(tmp_path / LONG)
    assert main([a.replace("{long}", long) for a in argv]) == 1
    line = _one_line(capsys)
    assert line.startswith(f"mdmr-provision: error: {long}")
    assert line.endswith(": File name too long")


def test_broken_symlink_in_an_inventory_directory_is_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Was: silently skipped, so the inventory lost that file's sections without a word.
    path = write_inventory(tmp_path / "inv")
    (path.parent / "network.yaml").symlink_to(tmp_path / "gone.yaml")
    assert main(["validate", "-i", str(path.parent)]) == 1
    assert capsys.readouterr().err.splitlines() == [
        f"error: {path.parent / 'network.yaml'}:1:1: a symlink to nothing (the file it names "
        "does not exist)",
        f"{path.parent}: invalid (1 error)",
    ]
