"""A stand-in for the MDM/R file transfer service on loopback.

Parts, each in its own module: :mod:`.topology` (what is served where), :mod:`.pki` (demo
certificates), :mod:`.dns` (DNS responder), :mod:`.fts` (the FTS file checks and error
codes), :mod:`.journal` (what the FTS decided, readable by the tool), :mod:`.intake` (the FTS
behind one endpoint: decide, journal, send error reports), :mod:`.faults` (injected
failures), :mod:`.sites` (aiohttp listeners, TLS, transport faults, the DR listener),
:mod:`.server` (the AS2 endpoints), :mod:`.outbound` and :mod:`.post` (files the MDM/R sends:
its test file, error reports) and :mod:`.runtime` (``running_simulator``: all of it at once).
"""
