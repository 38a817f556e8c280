"""A stand-in for the MDM/R file transfer service on loopback.

Parts, each in its own module: :mod:`.topology` (what is served where), :mod:`.pki` (demo
certificates), :mod:`.dns` (DNS responder), :mod:`.fts` (the FTS file checks and error
codes), :mod:`.journal` (what the FTS decided, readable by the tool), :mod:`.intake` (the FTS
behind one endpoint: decide, journal, send error reports), :mod:`.faults` (injected
failures), :mod:`.sites` (aiohttp listeners, TLS, transport faults, the DR listener),
:mod:`.server` (the AS2 endpoints: the AS2 engine's receiver with the MDM/R's rules),
:mod:`.outbound` (files the MDM/R sends: its test file, error reports), :mod:`.post` (the
loopback-only guard in front of the engine's HTTP client) and :mod:`.runtime`
(``running_simulator``: all of it at once).
"""
