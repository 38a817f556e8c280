"""The receiver's inbox: payloads stored atomically under safe names, and the persisted
Message-ID -> MDN index that lets a duplicate be answered with the earlier receipt."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from dataclasses import dataclass
from pathlib import Path

from mdmr_provision.as2.mdn import MdnReply
from mdmr_provision.atomic import atomic_write
from mdmr_provision.errors import MdmrError

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
INDEX_DIR = ".as2-mdn-index"


def safe_name(name: str | None, fallback: str) -> str:
    """A file name that cannot leave its directory: last path segment, restricted characters,
    no leading dots, bounded length; ``fallback`` when nothing is left."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = _UNSAFE.sub("_", base).lstrip(".")[:200]
    return cleaned or _UNSAFE.sub("_", fallback).lstrip(".")[:200] or "message"


@dataclass(frozen=True)
class Recorded:
    """An earlier MDN and where its payload was stored."""

    mdn: MdnReply
    stored: Path | None


class Inbox:
    """Payload files under ``root/<sender>/`` and the MDN index under ``root/.as2-mdn-index``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._names = threading.Lock()

    def _index_path(self, message_id: str) -> Path:
        digest = hashlib.sha256(message_id.strip().encode("utf-8")).hexdigest()
        return self.root / INDEX_DIR / f"{digest}.json"

    def store(self, as2_from: str, filename: str | None, message_id: str, payload: bytes) -> Path:
        """Write ``payload`` atomically; never overwrites another message's file."""
        fallback = hashlib.sha256(message_id.encode()).hexdigest()[:16] + ".bin"
        folder = self.root / safe_name(as2_from, "unknown-sender")
        name = safe_name(filename, fallback)
        with self._names:  # choosing a free name and claiming it must not race
            folder.mkdir(parents=True, exist_ok=True)
            target = folder / name
            counter = 1
            while target.exists():
                stem, dot, ext = name.rpartition(".")
                alt = f"{stem}.{counter}.{ext}" if dot and stem else f"{name}.{counter}"
                target = folder / alt
                counter += 1
            target.touch(mode=0o644, exist_ok=False)
        atomic_write(target, payload)
        return target

    def lookup(self, message_id: str) -> Recorded | None:
        """The MDN recorded for ``message_id``, if the message was accepted before."""
        path = self._index_path(message_id)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            reply = MdnReply(
                headers=dict(data["headers"]),
                body=base64.b64decode(data["body"]),
                message_id=str(data["mdn_message_id"]),
            )
            stored = Path(data["stored"]) if data.get("stored") else None
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise MdmrError(f"{path}: unreadable MDN index entry: {exc}") from None
        return Recorded(reply, stored)

    def record(self, message_id: str, reply: MdnReply, stored: Path | None) -> None:
        """Persist the MDN sent for ``message_id`` (survives a restart)."""
        entry = {
            "message_id": message_id,
            "mdn_message_id": reply.message_id,
            "headers": reply.headers,
            "body": base64.b64encode(reply.body).decode("ascii"),
            "stored": str(stored) if stored else None,
        }
        atomic_write(self._index_path(message_id), json.dumps(entry).encode("utf-8"))
