"""Table of bad inventories: each pins the exact messages and their FILE:LINE:COL."""

# ruff: noqa: E501  (the pinned messages are longer than a line)

from __future__ import annotations

from pathlib import Path

import pytest

from mdmr_provision.errors import InventoryError
from mdmr_provision.inventory import load_inventory
from tests.support.inventory import BASE, write_inventory

BAD_INVENTORIES = [
    pytest.param(
        {4: "\tname: Hydro"},
        ["inv.yaml:4:1: tab character where YAML needs spaces (indent with spaces)"],
        id="tab-indent",
    ),
    pytest.param(
        {5: "    role: ldc\n    name: Again"},
        [
            "inv.yaml:6:5: organisations.ORG10000.name: duplicate key 'name' (first defined on line 4)"
        ],
        id="duplicate-key",
    ),
    pytest.param(
        {44: "    prot: 14080"},
        [
            "inv.yaml:40:5: firewall[0]: missing required key 'port'",
            "inv.yaml:44:5: firewall[0].prot: unknown key 'prot' (allowed: addresses, direction, environment, name, org_id, port, protocol, servers)",
        ],
        id="unknown-key",
    ),
    pytest.param(
        {44: "    port: abc"},
        ["inv.yaml:44:11: firewall[0].port: expected an integer, got 'abc'"],
        id="port-not-integer",
    ),
    pytest.param(
        {44: "    port: 70000"},
        ["inv.yaml:44:11: firewall[0].port: must be at most 65535, got 70000"],
        id="port-out-of-range",
    ),
    pytest.param(
        {16: "  ORG2:"},
        [
            "inv.yaml:16:3: organisations.ORG2: invalid key 'ORG2': must be an MDM/R ORG ID: 8 letters or digits beginning 'ORG'"
        ],
        id="bad-org-id-key",
    ),
    pytest.param(
        {5: "    role: boss"},
        [
            "inv.yaml:5:11: organisations.ORG10000.role: expected one of ldc, billing_agent, ami_operator, got 'boss'"
        ],
        id="bad-role",
    ),
    pytest.param(
        {26: "    agent: ORG99999"},
        [
            "inv.yaml:21:5: organisations.ORG20000.servers: agent ORG20000 has servers but no relationship authorises it to send for an LDC (R12)",
            "inv.yaml:26:12: relationships[0].agent: unknown organisation 'ORG99999'",
        ],
        id="relationship-unknown-agent",
    ),
    pytest.param(
        {27: "    role: billing_agent"},
        [
            "inv.yaml:27:11: relationships[0].role: 'ORG20000' has role ami_operator, not billing_agent (add billing_agent to its roles if it acts as one)"
        ],
        id="relationship-role-mismatch",
    ),
    pytest.param(
        {25: "  - ldc: ORG20000", 26: "    agent: ORG10000"},
        [
            "inv.yaml:21:5: organisations.ORG20000.servers: agent ORG20000 has servers but no relationship authorises it to send for an LDC (R12)",
            "inv.yaml:25:10: relationships[0].ldc: 'ORG20000' has role ami_operator, not ldc",
            "inv.yaml:27:11: relationships[0].role: 'ORG10000' has role ldc, not ami_operator (add ami_operator to its roles if it acts as one)",
        ],
        id="relationship-ldc-not-ldc",
    ),
    pytest.param(
        {24: "relationships: []", 25: None, 26: None, 27: None},
        [
            "inv.yaml:21:5: organisations.ORG20000.servers: agent ORG20000 has servers but no relationship authorises it to send for an LDC (R12)"
        ],
        id="agent-without-relationship",
    ),
    pytest.param(
        {45: "    servers: [as2-z]"},
        ["inv.yaml:45:15: firewall[0].servers[0]: unknown server 'as2-z'"],
        id="firewall-unknown-server",
    ),
    pytest.param(
        {42: "    environment: production"},
        [
            "inv.yaml:42:18: firewall[0].environment: unknown environment 'production' (not declared)"
        ],
        id="firewall-unknown-environment",
    ),
    pytest.param(
        {41: "    direction: ingress", 45: "    org_id: ORG77777"},
        ["inv.yaml:45:13: firewall[0].org_id: unknown organisation 'ORG77777'"],
        id="firewall-unknown-org",
    ),
    pytest.param(
        {32: None},
        [
            "inv.yaml:30:5: environments.sandbox.endpoint: sandbox transfers files, so the endpoint needs 'as2_id' (the MDM/R AS2 ID)"
        ],
        id="endpoint-without-as2-id",
    ),
    pytest.param(
        {34: "      mdn: async"},
        ["inv.yaml:34:12: environments.sandbox.endpoint.mdn: async MDN needs 'async_mdn_url' (here, or on every organisation or server that sends)"],
        id="async-mdn-without-url",
    ),
    pytest.param(
        {37: "      url: https://dr.test:80/as2"},
        [
            "inv.yaml:37:12: environments.dr.endpoint.url: https on port 80: use http:// or another port"
        ],
        id="https-on-port-80",
    ),
    pytest.param(
        {31: "      url: http://fts.test:443/as2"},
        [
            "inv.yaml:31:12: environments.sandbox.endpoint.url: http on port 443: use https:// or another port"
        ],
        id="http-on-port-443",
    ),
    pytest.param(
        {31: "      url: http://fts.test:99999/as2"},
        [
            "inv.yaml:31:12: environments.sandbox.endpoint.url: port in 'http://fts.test:99999/as2' must be 1-65535"
        ],
        id="url-port-out-of-range",
    ),
    pytest.param(
        {20: "      cert: certs/missing.pem"},
        [
            "inv.yaml:20:13: organisations.ORG20000.certificate.cert: certificate file 'certs/missing.pem' not found; "
            "`mdmr-provision cert request --org ORG20000 --out certs` makes the key and a CSR for your CA; put the "
            "certificate it issues beside them"
        ],
        id="missing-certificate-file",
    ),
    pytest.param(
        {34: "      mdn: sync\n    reachability: [tcp]"},
        ["inv.yaml:35:5: environments.sandbox.reachability: reachability applies to dr only"],
        id="reachability-on-sandbox",
    ),
    pytest.param(
        {49: "  large_file_size: 1MB"},
        [
            "inv.yaml:49:20: policy.large_file_size: 1000000 bytes is below the guide's 5 MB minimum (set allow_small_large_file: true to accept it)"
        ],
        id="large-file-too-small",
    ),
    pytest.param(
        {49: "  large_file_size: 2GiB"},
        ["inv.yaml:49:20: policy.large_file_size: 2147483648 bytes is more than the 1GiB limit"],
        id="large-file-too-big",
    ),
    pytest.param(
        {49: "  large_file_size: 5 parsecs"},
        [
            "inv.yaml:49:20: policy.large_file_size: must be a size in bytes or with a unit: B, KB, MB, GB (powers of 1000) or KiB, MiB, GiB (powers of 1024), e.g. 5MiB, got '5 parsecs'"
        ],
        id="large-file-bad-unit",
    ),
    pytest.param(
        {22: "      as2-a:"},
        [
            "inv.yaml:22:7: organisations.ORG20000.servers.as2-a: server name 'as2-a' is already used by ORG10000"
        ],
        id="duplicate-server-name",
    ),
    pytest.param(
        {18: "    role: ami_operator\n    as2_id: ORG10000"},
        [
            "inv.yaml:19:13: organisations.ORG20000.as2_id: AS2 ID 'ORG10000' is already used by ORG10000"
        ],
        id="duplicate-as2-id",
    ),
    pytest.param(
        {1: "version: 2"},
        ["inv.yaml:1:10: version: must be 1, got 2"],
        id="version-2",
    ),
    pytest.param(
        {14: "      dr:"},
        [
            "inv.yaml:13:5: organisations.ORG10000.receivers: ORG10000 cannot receive the MDM/R's test file in sandbox (two-way, R3): add organisations.ORG10000.receivers.sandbox (product: external for your own AS2 product) or an agent relationship with receives: true",
            "inv.yaml:14:7: organisations.ORG10000.receivers.dr: dr has no file transfer, so no receiver (R1)",
        ],
        id="receiver-for-dr",
    ),
    pytest.param(
        {47: '  resolvers: ["127.0.10.53:99999"]'},
        [
            "inv.yaml:47:15: dns.resolvers[0]: bad resolver '127.0.10.53:99999': port must be 1-65535, got '99999'"
        ],
        id="bad-resolver-port",
    ),
    pytest.param(
        {35: "  staging:"},
        [
            "inv.yaml:35:3: environments.staging: unknown name 'staging' (allowed: sandbox, enrolment, qa, enrollment, production, dr)"
        ],
        id="unknown-environment-name",
    ),
    pytest.param(
        {9: "      passphrase_env: LDC_PASS\n      passphrase_file: certs/ldc.pass"},
        [
            "inv.yaml:10:7: organisations.ORG10000.certificate.passphrase_file: set passphrase_env or passphrase_file, not both",
            "inv.yaml:10:24: organisations.ORG10000.certificate.passphrase_file: passphrase file 'certs/ldc.pass' not found",
        ],
        id="passphrase-env-and-file",
    ),
    pytest.param(
        {12: "        address: 127.0.30.1\n        connection: ssh"},
        [
            "inv.yaml:11:7: organisations.ORG10000.servers.as2-a: connection 'ssh' needs an 'ssh' section (user, port, key)"
        ],
        id="ssh-without-section",
    ),
    pytest.param(
        {50: "  file_name_tag: FTSN\n  cutover_date: 2027-02-30"},
        [
            "inv.yaml:51:17: policy.cutover_date: must be a valid date (YYYY-MM-DD), got '2027-02-30'"
        ],
        id="invalid-date",
    ),
    pytest.param(
        {27: "    role: ami_operator\n    environments: [dr]"},
        [
            "inv.yaml:28:20: relationships[0].environments[0]: 'dr' has no file transfer; relationships cover sandbox, enrolment, production"
        ],
        id="relationship-for-dr",
    ),
    pytest.param(
        {4: '    name: ""'},
        ["inv.yaml:4:11: organisations.ORG10000.name: must not be empty"],
        id="empty-name",
    ),
    pytest.param(
        {47: '  resolvers: ["127.0.10.53:15353"]\n  timeout_seconds: 0'},
        ["inv.yaml:48:20: dns.timeout_seconds: must be greater than 0, got 0"],
        id="dns-timeout-zero",
    ),
    pytest.param(
        {38: "    reachability: []"},
        ["inv.yaml:38:19: environments.dr.reachability: must not be an empty list"],
        id="dr-reachability-empty",
    ),
    pytest.param(
        {21: "    servers:", 22: None, 23: None},
        ["inv.yaml:21:13: organisations.ORG20000.servers: expected a mapping, got nothing (null)"],
        id="servers-null",
    ),
    pytest.param(
        {6: "    certificate: certs/ldc.pem", 7: None, 8: None, 9: None},
        [
            "inv.yaml:6:18: organisations.ORG10000.certificate: expected a mapping, got 'certs/ldc.pem'"
        ],
        id="certificate-not-mapping",
    ),
    pytest.param(
        {34: "      mdn: sync\n      encryption: aes256-gcm"},
        [
            "inv.yaml:35:19: environments.sandbox.endpoint.encryption: expected one of aes128, aes256, 3des, got 'aes256-gcm': AES-GCM is not offered: OpenAS2 4.9, the AS2 product tested live, cannot decrypt it (authEnveloped-data: it answers signed-message-required and drops the file), so an LDC's product may not either; use aes256 or aes128"
        ],
        id="aes-gcm-not-offered",
    ),
    pytest.param(
        {50: "  file_name_tag: FTSX"},
        ["inv.yaml:50:18: policy.file_name_tag: expected one of FTSN, FTSFN, got 'FTSX'"],
        id="bad-tag",
    ),
    pytest.param(
        {15: "        url: https://127.0.20.1:80/as2"},
        [
            "inv.yaml:15:14: organisations.ORG10000.receivers.sandbox.url: https on port 80: use http:// or another port"
        ],
        id="receiver-port-in-url",
    ),
    pytest.param(
        {4: None},
        ["inv.yaml:3:3: organisations.ORG10000: missing required key 'name'"],
        id="missing-name",
    ),
    pytest.param(
        {9: "      passphrase_env: s3cret pass!"},
        [
            "inv.yaml:9:23: organisations.ORG10000.certificate.passphrase_env: must be an environment variable name (letters, digits, underscore), got a value (hidden)"
        ],
        id="passphrase-not-echoed",
    ),
    pytest.param(
        {31: "      url: http://fts.test:0/as2"},
        [
            "inv.yaml:31:12: environments.sandbox.endpoint.url: port in 'http://fts.test:0/as2' must be 1-65535"
        ],
        id="url-port-zero",
    ),
    pytest.param(
        {31: "      url: http://[fts.test/as2"},
        [
            "inv.yaml:31:12: environments.sandbox.endpoint.url: not a valid URL 'http://[fts.test/as2': Invalid IPv6 URL"
        ],
        id="url-malformed-ipv6",
    ),
    pytest.param(
        {5: "    role: billing_agent"},
        [
            "inv.yaml:2:1: organisations: no organisation with role 'ldc' is declared",
            "inv.yaml:10:5: organisations.ORG10000.servers: agent ORG10000 has servers but no relationship authorises it to send for an LDC (R12)",
            "inv.yaml:25:10: relationships[0].ldc: 'ORG10000' has role billing_agent, not ldc",
        ],
        id="no-ldc",
    ),
    pytest.param(
        {5: "    role: ldc\n    roles: [ldc]"},
        ["inv.yaml:6:5: organisations.ORG10000.roles: set 'role' or 'roles', not both"],
        id="role-and-roles",
    ),
    pytest.param(
        {5: None},
        [
            "inv.yaml:3:3: organisations.ORG10000: missing 'role' (or 'roles': a list of ldc, billing_agent, ami_operator)"
        ],
        id="no-role",
    ),
    pytest.param(
        {18: "    roles: [ami_operator, ami_operator]"},
        ["inv.yaml:18:12: organisations.ORG20000.roles: lists the same value more than once"],
        id="roles-repeated",
    ),
    pytest.param(
        {26: "    agent: ORG10000"},
        [
            "inv.yaml:21:5: organisations.ORG20000.servers: agent ORG20000 has servers but no relationship authorises it to send for an LDC (R12)",
            "inv.yaml:26:12: relationships[0].agent: 'ORG10000' cannot be its own agent",
        ],
        id="relationship-self",
    ),
]


def test_base_inventory_is_valid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write_inventory(tmp_path)
    inventory = load_inventory(Path("inv.yaml"))
    assert [o.org_id for o in inventory.organisations] == ["ORG10000", "ORG20000"]


def test_table_is_large_and_distinct() -> None:
    assert len(BAD_INVENTORIES) >= 25
    texts = {repr(p.values[0]) for p in BAD_INVENTORIES}
    assert len(texts) == len(BAD_INVENTORIES)
    assert BASE.count("\n") == 50


@pytest.mark.parametrize(("changes", "expected"), BAD_INVENTORIES)
def test_bad_inventory(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    changes: dict[int, str | None],
    expected: list[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    write_inventory(tmp_path, changes)
    with pytest.raises(InventoryError) as info:
        load_inventory(Path("inv.yaml"))
    assert [str(p) for p in info.value.problems] == expected
    # The one-line message is the first problem, with a count of the rest.
    more = len(expected) - 1
    assert str(info.value) == (expected[0] if not more else f"{expected[0]} (and {more} more)")
