"""State: the records of applied resources, the evidence history and the lock."""

from mdmr_provision.state.backend import StateBackend, open_backend, state_location
from mdmr_provision.state.lock import LockInfo, force_unlock, read_lock, state_lock
from mdmr_provision.state.store import State, StateStore

__all__ = [
    "LockInfo",
    "State",
    "StateBackend",
    "StateStore",
    "force_unlock",
    "open_backend",
    "read_lock",
    "state_location",
    "state_lock",
]
