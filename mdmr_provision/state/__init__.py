"""State: the records of applied resources, the evidence history and the lock."""

from mdmr_provision.state.lock import LockInfo, force_unlock, read_lock, state_lock
from mdmr_provision.state.store import State, StateStore, default_state_path

__all__ = [
    "LockInfo",
    "State",
    "StateStore",
    "default_state_path",
    "force_unlock",
    "read_lock",
    "state_lock",
]
