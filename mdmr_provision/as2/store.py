"""The receiver's inbox: payloads stored atomically under safe names, and the persisted
Message-ID -> MDN index that lets a duplicate be answered with the earlier receipt.

An inbox may be bounded (``keep_files``, ``keep_bytes``): after each store the oldest
payloads beyond the bound are removed, the newest always kept.  The MDN index is not pruned:
it is small, and a duplicate must still get its earlier receipt.  The simulator bounds its
inboxes (its journal keeps every file's size and SHA-256); our own receivers keep everything,
since a proof's evidence points at the stored file.
"""

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

    def __init__(self, root: Path, *, keep_files: int | None = None,
                 keep_bytes: int | None = None) -> None:
        self.root = Path(root)
        self.keep_files = keep_files
        self.keep_bytes = keep_bytes
        self._names = threading.Lock()

    def _index_path(self, message_id: str) -> Path:
        digest = hashlib.sha256(message_id.strip().encode("utf-8")).hexdigest()
        return self.root / INDEX_DIR / f"{digest}.json"

    def store(self, as2_from: str, filename: str | None, message_id: str, payload: bytes) -> Path:
        """Write ``payload`` atomically; never overwrites another message's file."""
        fallback = hashlib.sha256(message_id.encode()).hexdigest()[:16] + ".bin"
        folder = self.root / safe_name(as2_from, "unknown-sender")
        name = safe_name(filename, fallback)
        try:
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
            if self.keep_files is not None or self.keep_bytes is not None:
                self.prune(keep=target)
        except OSError as exc:
            # An inbox that is a file, a full disk, no permission: the sender gets an error
            # MDN and the log one line, not a traceback.
            if isinstance(exc, NotADirectoryError | FileExistsError):
                raise MdmrError(f"the inbox {self.root} is not a directory") from None
            where = exc.filename or folder
            raise MdmrError(f"cannot store the payload in {where}: {exc.strerror}") from None
        return target

    def prune(self, keep: Path | None = None) -> list[Path]:
        """Remove the oldest payloads beyond ``keep_files``/``keep_bytes``; never ``keep``
        (the file just stored).  Returns what was removed."""
        with self._names:
            files: list[tuple[float, int, Path]] = []
            for folder in self.root.iterdir() if self.root.is_dir() else ():
                if folder.name == INDEX_DIR or not folder.is_dir():
                    continue
                for path in folder.iterdir():
                    if path.name.startswith("."):  # a write in progress (atomic_write)
                        continue
                    try:
                        st = path.stat()
                    except FileNotFoundError:
                        continue
                    files.append((st.st_mtime, st.st_size, path))
            files.sort(key=lambda f: (f[2] == keep, f[0]), reverse=True)  # newest first
            removed: list[Path] = []
            total = 0
            for count, (_mtime, size, path) in enumerate(files, start=1):
                total += size
                over = (self.keep_files is not None and count > self.keep_files) or (
                    self.keep_bytes is not None and total > self.keep_bytes)
                if over and path != keep:
                    path.unlink(missing_ok=True)
                    removed.append(path)
            return removed

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
        except NotADirectoryError:
            raise MdmrError(f"the inbox {self.root} is not a directory") from None
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
