"""Inputs that once passed ``validate`` and then made ``plan``/``apply`` fail: each is now a
located ``FILE:LINE:COL: path: message`` error from ``validate`` itself."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from mdmr_provision.cli import main
from tests.support.example import copy_example

ORGS, ENVS, NET = "organisations.yaml", "environments.yaml", "network.yaml"


def _replace(root: Path, name: str, old: str, new: str) -> tuple[int, int]:
    """Replace the first ``old`` (after the 127.<k> move) in ``name``; the line and column
    where ``new`` starts."""
    path = root / name
    text = path.read_text(encoding="utf-8")
    k = re.search(r"127\.(\d+)\.10\.", (root / NET).read_text()).group(1)  # type: ignore[union-attr]
    old = old.replace("127.K.", f"127.{k}.")
    new = new.replace("127.K.", f"127.{k}.")
    at = text.index(old)
    path.write_text(text[:at] + new + text[at + len(old):], encoding="utf-8")
    line = text.count("\n", 0, at) + 1
    return line, at - (text.rfind("\n", 0, at) + 1) + 1


def _value(root: Path, name: str, key: str, old: str, new: str) -> tuple[int, int]:
    """Change the value of ``key: old`` to ``new``; where the value now starts."""
    line, col = _replace(root, name, f"{key}: {old}", f"{key}: {new}")
    return line, col + len(key) + 2


def _validate(root: Path, capsys: pytest.CaptureFixture[str]) -> list[str]:
    code = main(["validate", "-i", str(root)])
    err = capsys.readouterr().err
    assert code == 1, err
    return [line.removeprefix("error: ") for line in err.splitlines()
            if line.startswith("error: ")]


Setup = Callable[[Path], tuple[str, int, int, str, str]]


def _server_address(value: str) -> Setup:
    def setup(root: Path) -> tuple[str, int, int, str, str]:
        line, col = _value(root, ORGS, "address", "127.K.30.1", value)
        return (ORGS, line, col, "organisations.ORG10000.servers.as2-a.address",
                f"'{value}' is not an IP address: a server's address is the source address "
                "its connections come from")
    return setup


def _firewall(value: str, message: str) -> Setup:
    def setup(root: Path) -> tuple[str, int, int, str, str]:
        line, col = _replace(root, NET, "addresses: [127.K.10.1]", f"addresses: ['{value}']")
        return NET, line, col + len("addresses: ["), "firewall[0].addresses[0]", message
    return setup


def _resolver(value: str) -> Setup:
    def setup(root: Path) -> tuple[str, int, int, str, str]:
        line, col = _replace(root, NET, "- 127.K.10.53:15353", f"- {value}")
        return (NET, line, col + 2, "dns.resolvers[0]",
                f"resolver '{value}' is not an IP address (with an optional :port)")
    return setup


def _loop(root: Path, name: str) -> None:
    (root / f"{name}-a").symlink_to(f"{name}-b")
    (root / f"{name}-b").symlink_to(f"{name}-a")


def _cert_loop(root: Path) -> tuple[str, int, int, str, str]:
    _loop(root, "cert")
    line, col = _value(root, ORGS, "cert", ".demo/certs/ORG10000.pem", "cert-a")
    return (ORGS, line, col, "organisations.ORG10000.certificate.cert",
            "certificate file 'cert-a' is not a usable path: symlink loop")


def _workdir_loop(root: Path) -> tuple[str, int, int, str, str]:
    _loop(root, "work")
    line, col = _value(root, ORGS, "workdir", ".demo", "work-a")
    return (ORGS, line, col, "simulator.workdir",
            "simulator workdir 'work-a' is not a usable path: symlink loop")


def _unknown_user(root: Path) -> tuple[str, int, int, str, str]:
    line, col = _value(root, ORGS, "cert", ".demo/certs/ORG10000.pem", "~nosuchuser/x.pem")
    return (ORGS, line, col, "organisations.ORG10000.certificate.cert",
            "certificate file '~nosuchuser/x.pem' is not a usable path: "
            "unknown user 'nosuchuser'")


def _float_size(root: Path) -> tuple[str, int, int, str, str]:
    line, col = _value(root, ORGS, "large_file_size", "5MiB", "5500000.0")
    return (ORGS, line, col, "policy.large_file_size",
            "expected an integer or a string, got 5500000.0")


def _deep(root: Path) -> tuple[str, int, int, str, str]:
    (root / "deep.yaml").write_text("version: 1\npolicy: " + "[" * 5000 + "]" * 5000 + "\n")
    return "deep.yaml", 2, 8 + 64, "", "nested more than 64 levels deep"


def _same_receiver_url(root: Path) -> tuple[str, int, int, str, str]:
    line, _ = _replace(root, ORGS, "15080/as2/enrolment", "15080/as2/sandbox")
    start = (root / ORGS).read_text().splitlines()[line - 1].index("http") + 1
    return (ORGS, line, start, "organisations.ORG10000.receivers.enrolment.url",
            f"'{(root / ORGS).read_text().splitlines()[line - 1].split()[-1]}' is already "
            "where ORG10000's sandbox receiver listens")


def _workdir_device(root: Path) -> tuple[str, int, int, str, str]:
    line, col = _value(root, ORGS, "workdir", ".demo", "/dev/null")
    return (ORGS, line, col, "simulator.workdir",
            "simulator workdir '/dev/null' is a character device, not a directory")


def _org_id_newline(root: Path) -> tuple[str, int, int, str, str]:
    line, col = _replace(root, ORGS, "  ORG30000:", '  "ORG30000\\n":')
    return (ORGS, line, col + 2, "organisations['ORG30000\\n']",
            "invalid key 'ORG30000\\n': must be an MDM/R ORG ID: 8 letters or digits "
            "beginning 'ORG'")


def _inbox_file(root: Path) -> tuple[str, int, int, str, str]:
    (root / "inbox-file").write_text("not a folder")
    line, _ = _replace(root, ORGS, "15080/as2/sandbox",
                       "15080/as2/sandbox\n        inbox: inbox-file")
    return (ORGS, line + 1, 16, "organisations.ORG10000.receivers.sandbox.inbox",
            "receiver inbox 'inbox-file' is a file, not a directory")


def _cert_device(root: Path) -> tuple[str, int, int, str, str]:
    line, col = _value(root, ORGS, "cert", ".demo/certs/ORG10000.pem", "/dev/zero")
    return (ORGS, line, col, "organisations.ORG10000.certificate.cert",
            "certificate file '/dev/zero' is a character device, not a regular file")


def _utf16(root: Path) -> tuple[str, int, int, str, str]:
    path = root / NET
    path.write_bytes(path.read_text(encoding="utf-8").encode("utf-16"))
    return NET, 1, 1, "", "UTF-16 text: save the file as UTF-8"


CASES: dict[str, Setup] = {
    "server address with five parts": _server_address("127.77.30.4.5"),
    "server address out of range": _server_address("999.1.1.1"),
    "server address that is a name": _server_address("localhost"),
    "float large_file_size": _float_size,
    "5,000-deep YAML": _deep,
    "certificate path in a symlink loop": _cert_loop,
    "simulator workdir in a symlink loop": _workdir_loop,
    "~nosuchuser": _unknown_user,
    "two receivers at one URL": _same_receiver_url,
    "firewall 999.1.1.1": _firewall("999.1.1.1", "'999.1.1.1' is not an IP address"),
    "firewall injection": _firewall("127.77.10.1; drop table",
                                    "'127.77.10.1; drop table' is not an IP address"),
    "firewall CIDR": _firewall("127.77.10.0/24", "'127.77.10.0/24' is a network: firewall "
                               "rules list the MDM/R's addresses one by one"),
    "firewall host name": _firewall("fts.example", "'fts.example' is a host name: firewall "
                                    "rules take IP addresses"),
    "firewall IPv4-mapped address": _firewall("::ffff:127.77.10.1", "'::ffff:127.77.10.1' is "
                                              "an IPv4-mapped IPv6 address: write it as "
                                              "127.77.10.1"),
    "resolver name": _resolver("resolver.example"),
    "resolver a:b:c": _resolver("a:b:c"),
    "workdir /dev/null": _workdir_device,
    "ORG ID key with a trailing newline": _org_id_newline,
    "receiver inbox that is a file": _inbox_file,
    "certificate that is a device": _cert_device,
    "UTF-16 file": _utf16,
}


@pytest.mark.parametrize("case", CASES)
def test_validate_locates_what_plan_would_trip_on(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = copy_example(tmp_path / "inv")
    name, line, col, path, message = CASES[case](root)
    located = f"{root / name}:{line}:{col}: " + (f"{path}: " if path else "") + message
    errors = _validate(root, capsys)
    assert located in errors, "\n".join(errors)
