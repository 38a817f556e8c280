"""A stand-in for the MDM/R file transfer service on loopback.

Parts, each in its own module: :mod:`.topology` (what is served where), :mod:`.pki` (demo
certificates), :mod:`.dns` (DNS responder), :mod:`.fts` (the FTS file checks and error
codes), :mod:`.journal` (what the FTS decided, readable by the tool), :mod:`.faults`
(injected failures), :mod:`.server` (AS2 endpoints and DR listeners), :mod:`.outbound` (the
MDM/R's own test file) and :mod:`.runtime` (starting and stopping all of it).
"""
