"""An inventory shaped like a real LDC's (issue 15), with nothing on loopback.

Grand Valley Hydro (ORG66010, two AS2 nodes, an encrypted key) and Lakeside Power
(ORG66020) share a billing agent that is also Grand Valley's AMI operator (ORG6601B).
The MDM/R endpoints are public names on public ports, their certificates still
``pending``; servers, resolvers and firewall rules name real-looking addresses.  Only a
rehearsal (``--simulate``, addresses picked automatically) can run it on this machine.
"""

from __future__ import annotations

from pathlib import Path

from tests.support.cert import CertFactory

PASSPHRASE_ENV = "GVH_KEY_PASSPHRASE"
PASSPHRASE = "correct horse battery staple"

INVENTORY = """\
version: 1
organisations:
  ORG66010:
    name: Grand Valley Hydro
    role: ldc
    certificate:
      cert: certs/ORG66010.pem
      key: certs/ORG66010.key
      passphrase_env: GVH_KEY_PASSPHRASE
    servers:
      gvh-as2-a: {address: 10.20.0.11}
      gvh-as2-b: {address: 10.20.0.12}
    receivers:
      # The public name resolves only outside; the receiver binds its own address.
      sandbox: &gvh
        url: https://as2.grvh.lab:15444/as2/sandbox
        listen_host: 10.20.0.11
        listen_port: 8444
        tls:
          cert: certs/as2.grvh.lab.pem
          chain: certs/public-ca.pem
          key: certs/as2.grvh.lab.key
          passphrase_env: GVH_KEY_PASSPHRASE
      enrolment: {<<: *gvh, url: "https://as2.grvh.lab:15444/as2/enrolment"}
      production: {<<: *gvh, url: "https://as2.grvh.lab:15444/as2/production"}
  ORG66020:
    name: Lakeside Power
    role: ldc
    certificate: {cert: certs/ORG66020.pem, key: certs/ORG66020.key}
    receivers:  # its AS2 node takes the MDM/R's files too (two-way)
      sandbox: {url: "http://10.30.0.5:8080/as2/sandbox"}
      enrolment: {url: "http://10.30.0.5:8080/as2/enrolment"}
      production: {url: "http://10.30.0.5:8080/as2/production"}
    servers:
      lsp-as2: {address: 10.30.0.5}
  ORG6601B:
    name: Shared Billing and Metering
    roles: [billing_agent, ami_operator]
    certificate: {cert: certs/ORG6601B.pem, key: certs/ORG6601B.key}
    # Its asynchronous MDNs come to its own network, not to the LDC's receiver.
    async_mdn_url: http://mdn.sbm.example:8080/as2/mdn
    servers:
      sbm-1: {address: 192.168.50.5}
relationships:
  - {ldc: ORG66010, agent: ORG6601B, role: billing_agent}
  - {ldc: ORG66010, agent: ORG6601B, role: ami_operator}
  - {ldc: ORG66020, agent: ORG6601B, role: billing_agent}
environments:
  sandbox:
    endpoint:
      url: https://fts-sandbox.mdmr.example/as2
      as2_id: MDMRSBX
      certificate: pending
      tls_ca: certs/public-ca.pem
  enrolment:
    endpoint:
      url: https://fts-qa.mdmr.example/as2
      as2_id: pending
      certificate: pending
      tls_ca: certs/public-ca.pem
      mdn: async
      async_mdn_url: https://as2.grvh.lab:15444/as2/mdn
  production:
    endpoint:
      url: https://fts.mdmr.example/as2
      as2_id: MDMRPRD
      certificate: pending
      tls_ca: certs/public-ca.pem
  dr:
    endpoint:
      url: https://fts-dr.mdmr.example/as2
      tls_ca: certs/public-ca.pem
dns:
  resolvers: [10.0.0.53]
firewall:
  - {name: egress-sandbox, direction: egress, environment: sandbox,
     addresses: [203.0.113.10], port: 443}
  - {name: egress-enrolment, direction: egress, environment: enrolment,
     addresses: [203.0.113.11], port: 443}
  - {name: egress-production, direction: egress, environment: production,
     addresses: [203.0.113.12], port: 443}
  - {name: egress-dr, direction: egress, environment: dr, addresses: [198.51.100.12], port: 443}
  - {name: ingress-gvh, direction: ingress, org_id: ORG66010,
     addresses: [203.0.113.10, 203.0.113.11, 203.0.113.12], port: 8444}
policy:
  large_file_size: 5MB
"""


def write_realistic(root: Path) -> Path:
    """Write the inventory and its (real-CA-issued) certificates under ``root``."""
    certs = CertFactory(root / "certs")
    certs.issue("ORG66010", "ORG66010", passphrase=PASSPHRASE)
    certs.issue("ORG66020", "ORG66020")
    certs.issue("ORG6601B", "ORG6601B")
    certs.issue("as2.grvh.lab", "as2.grvh.lab", passphrase=PASSPHRASE)
    ca_cert, _ = certs.ca()
    (root / "certs" / "public-ca.pem").write_bytes(ca_cert.read_bytes())
    path = root / "inventory.yaml"
    path.write_text(INVENTORY, encoding="utf-8")
    return path


#: The billing agent as the LDC's inventory declares it when another company runs it:
#: public facts only.
AGENT_RUN_BY_OTHER = """\
  ORG6601B:
    name: Shared Billing and Metering
    roles: [billing_agent, ami_operator]
    run_by: other_party
    certificate: {cert: certs/ORG6601B.pem}
    source_addresses: [192.168.50.5]
"""

#: The billing agent's own inventory: it runs ORG6601B; the LDCs are the other parties.
AGENT_INVENTORY = """\
version: 1
organisations:
  ORG6601B:
    name: Shared Billing and Metering
    roles: [billing_agent, ami_operator]
    certificate: {cert: ../certs/ORG6601B.pem, key: ../certs/ORG6601B.key}
    servers:
      sbm-1: {address: 192.168.50.5}
  ORG66010:
    name: Grand Valley Hydro
    role: ldc
    run_by: other_party
    certificate: {cert: ../certs/ORG66010.pem}
    source_addresses: [10.20.0.11, 10.20.0.12]
  ORG66020:
    name: Lakeside Power
    role: ldc
    run_by: other_party
    certificate: {cert: ../certs/ORG66020.pem}
relationships:
  - {ldc: ORG66010, agent: ORG6601B, role: billing_agent}
  - {ldc: ORG66010, agent: ORG6601B, role: ami_operator}
  - {ldc: ORG66020, agent: ORG6601B, role: billing_agent}
environments:
  sandbox:
    endpoint: {url: "https://fts-sandbox.mdmr.example/as2", as2_id: MDMRSBX,
               certificate: pending, tls_ca: ../certs/public-ca.pem}
  enrolment:
    endpoint: {url: "https://fts-qa.mdmr.example/as2", as2_id: pending,
               certificate: pending, tls_ca: ../certs/public-ca.pem}
  production:
    endpoint: {url: "https://fts.mdmr.example/as2", as2_id: MDMRPRD,
               certificate: pending, tls_ca: ../certs/public-ca.pem}
  dr:
    endpoint: {url: "https://fts-dr.mdmr.example/as2", tls_ca: ../certs/public-ca.pem}
dns:
  resolvers: [192.168.50.53]
policy:
  large_file_size: 5MB
"""


def agent_runs_itself(ldc_inventory: Path) -> Path:
    """Make the LDC's inventory declare ORG6601B as run by another party, and write that
    party's own inventory in ``<root>/agent/``; returns the agent's inventory path."""
    text = ldc_inventory.read_text(encoding="utf-8")
    start = text.index("  ORG6601B:\n")
    end = text.index("relationships:\n")
    ldc_inventory.write_text(text[:start] + AGENT_RUN_BY_OTHER + text[end:], encoding="utf-8")
    agent = ldc_inventory.parent / "agent"
    agent.mkdir()
    path = agent / "inventory.yaml"
    path.write_text(AGENT_INVENTORY, encoding="utf-8")
    return path
