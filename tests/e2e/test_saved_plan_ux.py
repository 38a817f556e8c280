"""Saved plans for reviewers: `show`, hints that work when pasted, refusal before servers."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from mdmr_provision.cli import main
from tests.support.example import copy_example
from tests.support.planner import slow_inventory

T = ["--target", "slow"]


@pytest.fixture
def inv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return slow_inventory(tmp_path, monkeypatch, 3)


def test_show_prints_a_saved_plan_three_ways(
    inv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "p.json"
    assert main(["plan", "-i", str(inv), *T, "--out", str(out)]) == 0
    planned = capsys.readouterr().out
    assert main(["show", str(out)]) == 0
    shown = capsys.readouterr().out
    # The same plan as `plan` printed, then when and how it was made.
    assert shown.startswith(planned)
    assert "Saved plan made " in shown and "against the real endpoints" in shown
    # Its last line is the command that applies it, as the plan's --out hint said.
    assert shown.rstrip().splitlines()[-1] == (
        f"Apply exactly this plan with: mdmr-provision apply -i {inv} {out}")
    assert main(["show", str(out), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["format"] == "mdmr-provision-plan" and doc["format_version"] == 1
    assert doc == json.loads(out.read_text())
    assert main(["show", str(out), "--markdown"]) == 0
    assert "### Plan: 3 to create" in capsys.readouterr().out
    # The annotations `plan --format github` prints, from the saved plan (CI probes once).
    assert main(["plan", "-i", str(inv), *T, "--format", "github"]) == 0
    annotations = capsys.readouterr().out
    assert main(["show", str(out), "--format", "github"]) == 0
    shown = capsys.readouterr().out
    assert shown.count("::notice ") == 4 and shown.startswith("::notice title=create ")
    assert shown == annotations


def test_show_rejects_what_is_not_a_plan(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                         ) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "something-else"}')
    assert main(["show", str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a valid saved plan" in err
    assert main(["show", str(tmp_path / "missing.json")]) == 1


def test_out_hint_works_when_pasted(
    inv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "dir with space" / "p.json"
    out.parent.mkdir()
    state = tmp_path / "st.json"
    assert main(["plan", "-i", str(inv), "--state", str(state), *T, "--out", str(out)]) == 0
    err = capsys.readouterr().err
    hint = err.split("apply exactly it with: ", 1)[1].strip()
    argv = shlex.split(hint)
    assert argv[:2] == ["mdmr-provision", "apply"] and "--state" in argv
    assert main([*argv[1:], "--auto-approve"]) == 0
    assert "Apply: 3 succeeded" in capsys.readouterr().out


def test_simulated_plan_hint_and_refusals_before_any_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("MDMR_STATE", "MDMR_EXTRA_PROVIDERS"):
        monkeypatch.delenv(name, raising=False)
    inv = copy_example(tmp_path / "inv")
    out = tmp_path / "p.json"
    assert main(["plan", "-i", str(inv), "--simulate", "--env", "dr", "--out",
                 str(out)]) == 0
    err = capsys.readouterr().err
    assert "simulator:" in err
    hint = shlex.split(err.split("apply exactly it with: ", 1)[1].strip())
    assert "--simulate" in hint  # the plan was made with the simulator: so is the apply
    # A wrong environment is refused before the simulator starts, with a suggestion.
    assert main(["plan", "-i", str(inv), "--simulate", "--env", "prod"]) == 1
    err = capsys.readouterr().err
    assert "simulator:" not in err and "(did you mean production?)" in err
    assert main(["plan", "-i", str(inv), "--simulate", "--target", "proof.outbond"]) == 1
    err = capsys.readouterr().err
    assert "simulator:" not in err and "(did you mean proof.outbound?)" in err
    # A stale saved plan (the inventory changed) is refused before the simulator starts.
    policy = inv / "organisations.yaml"
    policy.write_text(policy.read_text().replace("large_file_size: 5MiB", "large_file_size: 6MiB"))
    assert main(["apply", "-i", str(inv), "--simulate", str(out), "--auto-approve"]) == 1
    err = capsys.readouterr().err
    assert "stale" in err and "simulator:" not in err
    # So is a plan made with --simulate applied without it.
    assert main(["apply", "-i", str(inv), str(out)]) == 1
    assert "apply it with --simulate" in capsys.readouterr().err


def test_one_inventory_unless_validate(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                       ) -> None:
    assert main(["plan", "-i", "a", "-i", "b"]) == 2
    assert "-i was given twice" in capsys.readouterr().err
    good = copy_example(tmp_path / "good")
    assert main(["validate", "-i", str(good), "-i", str(tmp_path / "gods")]) == 1
    err = capsys.readouterr().err
    assert f"{tmp_path / 'gods'}: no such file or directory (did you mean " \
        f"{tmp_path / 'good'}?)" in err
    assert ":1:1" not in err
    assert main(["validate", "--json", str(good), str(good / "network.yaml")]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["format"] == "mdmr-provision-validate" and doc["valid"] is False
    assert [d["valid"] for d in doc["inventories"]] == [True, False]


def test_apply_json_is_an_event_stream(inv: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["apply", "-i", str(inv), *T, "--json"]) == 2  # cannot ask for confirmation
    assert "--auto-approve" in capsys.readouterr().err
    assert main(["apply", "-i", str(inv), *T, "--json", "--auto-approve"]) == 0
    out = capsys.readouterr().out
    events = [json.loads(line) for line in out.splitlines()]
    assert all(e["format"] == "mdmr-provision-apply-event" and e["format_version"] == 1
               for e in events)
    assert [e["event"] for e in events] == ["plan", "step", "step", "step", "summary"]
    assert events[0]["plan"]["summary"]["create"] == 3
    assert {e["address"] for e in events[1:4]} == {"slow.file00", "slow.file01", "slow.file02"}
    assert events[-1]["ok"] is True and events[-1]["counts"] == {"succeeded": 3}


def test_apply_check_detailed_exitcode(inv: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["apply", "-i", str(inv), *T, "--detailed-exitcode", "--auto-approve"]) == 2
    assert "goes with --check" in capsys.readouterr().err
    assert main(["apply", "-i", str(inv), *T, "--check", "--detailed-exitcode"]) == 2
    capsys.readouterr()
    assert main(["apply", "-i", str(inv), *T, "--auto-approve"]) == 0
    capsys.readouterr()
    assert main(["apply", "-i", str(inv), *T, "--check", "--detailed-exitcode"]) == 0
