"""Messages that say what to do next: lock held, interrupted, port taken, never proven."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from mdmr_provision.cli import main
from mdmr_provision.core.types import Evidence, EvidenceKind
from mdmr_provision.errors import MdmrError, StateError
from mdmr_provision.resources.proofs.base import last_failure
from mdmr_provision.state import state_lock

AT = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def ev(address: str, ok: bool, error: str | None = None) -> Evidence:
    return Evidence(address=address, kind="proof.outbound", environment="sandbox", ok=ok,
                    at=AT, details={"error": error} if error else {},
                    evidence=EvidenceKind.REAL)


def test_never_proven_says_why_the_last_attempt_failed() -> None:
    a = "proof.outbound.sandbox.O.O.s"
    assert last_failure([], a) == ""
    assert last_failure([ev(a, False, "E150 sender not authorised")], a) == \
        "; last attempt 2026-11-29 failed: E150 sender not authorised"
    assert last_failure([ev(a, False, "x"), ev(a, True)], a) == ""
    assert last_failure([ev(a, False, "old"), ev("other", True), ev(a, False)], a) == \
        "; last attempt 2026-11-29 failed"


def test_lock_message_names_the_way_out(tmp_path: Path) -> None:
    state = tmp_path / "inv" / ".mdmr" / "state.json"
    state.parent.mkdir(parents=True)
    with (state_lock(state, "apply elsewhere") as info, pytest.raises(StateError) as caught,
          state_lock(state, "second")):
        pass
    message = str(caught.value)
    assert "--lock-timeout SECONDS waits for it" in message
    assert f"lock id {info.id}" in message and "command: apply elsewhere" in message
    # The way out is waiting: the lock goes with its holder, even after kill -9.
    assert message.endswith("however it ends, so there is nothing to force-unlock")


def test_interrupted_says_what_was_kept(monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    def boom(_: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr("mdmr_provision.cli.validate.run", boom)
    assert main(["validate", "-i", "x"]) == 130
    err = capsys.readouterr().err
    assert "interrupted: every step that finished is saved" in err and err.count("\n") == 1


async def test_a_taken_port_names_the_inventory_keys() -> None:
    import socket

    from mdmr_provision.as2.receiver import AS2Receiver

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        receiver = AS2Receiver([], host="127.0.0.1", port=port)
        with pytest.raises(MdmrError) as caught:
            await receiver.start()
    assert "organisations.ORG.receivers.ENV.url" in str(caught.value)
    # The errno's words, once (asyncio's own text repeats the address).
    assert str(caught.value).startswith(
        f"cannot listen on 127.0.0.1:{port}: Address already in use (the address is ")


def test_a_taken_receiver_port_names_its_own_keys(
    example_with_pki: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import socket

    from mdmr_provision.inventory import load_inventory

    inventory = load_inventory(example_with_pki)
    url = next(r.url for o in inventory.organisations for r in o.receivers
               if r.environment == "sandbox")
    host, port = url.split("//")[1].split("/")[0].split(":")
    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.bind((host, int(port)))
        holder.listen()
        code = main(["receive", "-i", str(example_with_pki), "--env", "sandbox",
                     "--timeout", "1"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.count("\n") == 1
    assert (f"ORG10000's receiver (sandbox): cannot listen on {host}:{port}: Address already "
            "in use (the address is organisations.ORG10000.receivers.sandbox.url (or its "
            "listen_host/listen_port) in the inventory;") in err


def test_quiet_drops_the_rehearsal_notes(
    example_with_pki: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Unpinned, as the example ships: the rehearsal moves every address and says so.
    orgs = example_with_pki / "organisations.yaml"
    orgs.write_text(orgs.read_text().replace("  addresses: pinned\n", ""))
    argv = ["plan", "-i", str(example_with_pki), "--simulate", "--target", "certificate.ORG10000"]
    assert main(argv) == 0
    assert "rehearsal: MDM/R sandbox endpoint: " in capsys.readouterr().err
    assert main([*argv, "-q"]) == 0
    captured = capsys.readouterr()
    assert "rehearsal:" not in captured.err and "simulator:" not in captured.err
    assert captured.out.splitlines()[-1].startswith("Plan: ")
