"""Connectors: where probes run.  :mod:`.ssh` runs them from a remote server over SSH.

The local connector lives with the probes in :mod:`mdmr_provision.facts.net`.
"""
