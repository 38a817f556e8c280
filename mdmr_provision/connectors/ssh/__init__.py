"""Probes from a remote server over SSH: the one boundary to ``paramiko``.

:class:`SshConnector` opens each probe's connection as an SSH ``direct-tcpip`` channel, so
the TCP connection really starts at the declared server, through its routes and firewall
(R5: every server that will connect to the FTS is tested).  The channel is bridged to a
local socket pair, and the same checks as :class:`~mdmr_provision.facts.net.LocalConnector`
run over it, TLS handshake included: the facts have the same shape, plus ``via``.

Host keys are checked against the inventory's ``known_hosts`` (default
``~/.ssh/known_hosts``); an unknown or changed key is refused, never learnt.  Login is by
the inventory's key file (its passphrase read from the reference at the moment of use), or
else the SSH agent and ``~/.ssh/id_*``.  Every paramiko and socket failure becomes a
:class:`~mdmr_provision.errors.TransportError` in plain words, which the probes report as
their fact's error.

One login per server is shared by its probes (:class:`SshPool`): a connection is closed a
few seconds after its last channel ends, and at exit.  :class:`SshForwarder` serves the
outbound proofs: loopback ports whose connections become channels from the server, so the
AS2 client (aiohttp) sends the test files from there while TLS still checks the real name.

This package is the only place that imports paramiko: ``login`` (host keys, keys, words),
``pool`` (shared logins, channels) and ``streams`` (sockets over channels).
"""

from mdmr_provision.connectors.ssh.login import SshTarget, channel_words, connect, fingerprint
from mdmr_provision.connectors.ssh.pool import LINGER_SECONDS, POOL, SshPool
from mdmr_provision.connectors.ssh.streams import SshConnector, SshForwarder, bridge

__all__ = ["LINGER_SECONDS", "POOL", "SshConnector", "SshForwarder", "SshPool", "SshTarget",
           "bridge", "channel_words", "connect", "fingerprint"]
