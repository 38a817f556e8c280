"""The command line for people: did-you-mean, usage of the right sub-command, output options."""

from __future__ import annotations

import pytest

from mdmr_provision.cli import main
from mdmr_provision.console import configure, options


@pytest.fixture(autouse=True)
def _reset_output_options() -> object:
    yield None
    configure()


def test_mistyped_command_gets_a_suggestion(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["pln"]) == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'pln' (did you mean plan?)" in err
    assert "Traceback" not in err


def test_mistyped_nested_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cert", "inspcet", "x"]) == 2
    assert "(did you mean inspect?)" in capsys.readouterr().err


def test_unknown_option_is_reported_under_the_sub_command(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["plan", "-i", "inv", "--simluate"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: mdmr-provision plan ")
    assert "mdmr-provision plan: error: unrecognized arguments: --simluate " \
        "(did you mean --simulate?)" in err


def test_unknown_option_without_a_close_match(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "-i", "inv", "--zzzzzz"]) == 2
    err = capsys.readouterr().err
    assert "usage: mdmr-provision validate" in err and "did you mean" not in err


@pytest.mark.parametrize(
    ("argv", "verbosity", "color"),
    [
        (["-v", "validate", "-i", "missing"], 1, True),
        (["validate", "-vv", "-i", "missing"], 2, True),
        (["-q", "validate", "-i", "missing"], -1, True),
        (["validate", "--no-color", "-i", "missing"], 0, False),
    ],
)
def test_output_options_anywhere(argv: list[str], verbosity: int, color: bool) -> None:
    assert main(argv) == 1  # the inventory is missing: the options were parsed first
    assert options().verbosity == verbosity and options().color_allowed is color


def test_no_color_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    main(["validate", "-i", "missing"])
    assert options().color_allowed is False
    monkeypatch.setenv("NO_COLOR", "")
    main(["validate", "-i", "missing"])
    assert options().color_allowed is True


def test_help_footer_names_no_internal_variables(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--help"], ["plan", "--help"], ["apply", "--help"]):
        with pytest.raises(SystemExit):
            from mdmr_provision.cli import build_parser

            build_parser().parse_args(argv)
    out = capsys.readouterr().out
    assert "MDMR_EXTRA_PROVIDERS" not in out and "NO_COLOR" in out


def test_environment_suggestions() -> None:
    from mdmr_provision.errors import PlanError
    from mdmr_provision.planner.graph import normalise_environment

    for typo, expected in (("prod", "production"), ("sandbx", "sandbox"), ("enrolmnt",
                                                                            "enrolment")):
        with pytest.raises(PlanError) as info:
            normalise_environment(typo)
        assert f"(did you mean {expected}?)" in str(info.value)
    assert normalise_environment("QA") == "enrolment"


def test_address_suggestions() -> None:
    from mdmr_provision.suggest import closest_address

    addresses = ["proof.outbound.sandbox.ORG1.ORG1.a", "proof.inbound.sandbox.ORG1",
                 "reachability.sandbox.a", "certificate.ORG1"]
    assert closest_address("proof.outbond", addresses) == "proof.outbound"
    assert closest_address("proof.outbound.sandbx", addresses) == "proof.outbound.sandbox"
    assert closest_address("reachabilty.sandbox.a", addresses) == "reachability.sandbox.a"
    assert closest_address("zzz", addresses) is None


def test_path_suggestion(tmp_path: object) -> None:
    from pathlib import Path

    from mdmr_provision.suggest import closest_path

    base = Path(str(tmp_path))
    (base / "example").mkdir()
    assert closest_path(base / "exmaple") == base / "example"
    assert closest_path(base / "nothing-like-it") is None


def test_quiet_plan_keeps_only_what_needs_attention() -> None:
    import io

    from mdmr_provision.core.types import Action, Change
    from mdmr_provision.planner.plan import Plan
    from mdmr_provision.planner.render import print_plan
    from tests.support.planner import NOW

    plan = Plan(changes=(
        Change("certificate.O.der", "certificate_der", Action.CREATE, "DER copy missing"),
        Change("proof.dr.O", "reachability", Action.BLOCKED, "DNS does not resolve",
               environment="dr"),
    ), inventory_fingerprint="F", lineage="L", serial=1, created_at=NOW)
    configure(quiet=True)
    out = io.StringIO()
    print_plan(plan, stream=out)
    assert out.getvalue().splitlines() == [
        "blocked proof.dr.O: DNS does not resolve",
        "Test files: none (this run exchanges no connectivity test file).",
        "Plan: 1 to create, 1 blocked; 0 unchanged.",
    ]


def test_hanging_indent_wraps_under_its_text() -> None:
    from rich.text import Text

    from mdmr_provision.console import Hanging, render_text

    text = render_text([Hanging(Text("  "), Text("word " * 30), 2, extra=2)], width=40)
    lines = text.splitlines()
    assert len(lines) > 2 and lines[0].startswith("  word") and not lines[0].startswith("   ")
    assert all(line.startswith("    word") and len(line) <= 40 for line in lines[1:])
    assert all(line == line.rstrip() for line in lines)


def test_confirm_and_prove_suggest_the_address(
    example: object, capsys: pytest.CaptureFixture[str]
) -> None:
    inv = str(example)
    assert main(["confirm", "-i", inv, "proof.inbound.sandbx.ORG10000", "--note", "x"]) == 1
    err = capsys.readouterr().err
    assert err == ("mdmr-provision: error: proof.inbound.sandbx.ORG10000: no such resource in "
                   "the inventory (did you mean proof.inbound.sandbox.ORG10000?); "
                   "`mdmr-provision plan` shows the manual steps to confirm\n")
    assert main(["prove", "-i", inv, "proof.outbond.production"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mdmr-provision: error: proof.outbond.production: no proof matches "
                          "(did you mean proof.outbound.production?); ")
    assert err.count("\n") == 1
    assert main(["prove", "-i", inv, "proof.outbound", "--server", "as2a"]) == 2
    assert capsys.readouterr().err == (
        "mdmr-provision: error: nothing to prove: no selected proof is in server as2a (did you "
        "mean as2-a?) (servers: as2-a, as2-b, ami-1, bill-1)\n")


def test_an_invalid_inventory_names_the_command_that_lists_every_problem(
    tmp_path: object, capsys: pytest.CaptureFixture[str]
) -> None:
    from pathlib import Path

    inv = Path(str(tmp_path)) / "inv.yaml"
    inv.write_text("organisations:\n  ORGX: {}\n  ORGY: {}\n")
    assert main(["plan", "-i", str(inv)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.rstrip().endswith(f"more); `mdmr-provision validate -i {inv}` lists every problem")
    # validate lists them itself; one problem needs no pointer.
    assert main(["validate", "-i", str(inv)]) == 1
    assert "lists every problem" not in capsys.readouterr().err


def test_a_missing_demo_certificate_says_simulate_makes_it(
    example: object, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    assert main(["plan", "-i", str(example), "--target", "certificate.ORG10000", "--json"]) == 0
    change = next(c for c in json.loads(capsys.readouterr().out)["changes"]
                  if c["address"] == "certificate.ORG10000")
    assert change["action"] == "blocked"
    assert change["reason"].endswith(
        "certificate file not found; it is a demo certificate of the simulator, made by any "
        "--simulate run (a rehearsal); for the MDM/R, point certificate.cert at your real one")


def test_environment_hints_take_prefixes_and_abbreviations() -> None:
    from mdmr_provision.suggest import environment_hint

    envs = ["sandbox", "enrolment", "production", "dr"]
    assert environment_hint("prd", envs) == " (did you mean production?)"
    assert environment_hint("prod", envs) == " (did you mean production?)"
    assert environment_hint("Sandbx", envs) == " (did you mean sandbox?)"
    assert environment_hint("enrol", envs) == " (did you mean enrolment?)"
    assert environment_hint("xyz", envs) == ""
    assert environment_hint("", envs) == ""
