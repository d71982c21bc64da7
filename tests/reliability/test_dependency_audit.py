"""The dependency audit's verdicts, from pip-audit JSON reports of each shape (the audit itself: ``make audit``)."""

from __future__ import annotations

from tools.dependency_audit import classify


def dep(name: str, *vulns: dict) -> dict:
    return {"name": name, "version": "1.0", "vulns": list(vulns)}


def test_a_fixable_vulnerability_fails() -> None:
    outcome = classify(
        {"dependencies": [dep("a"), dep("b", {"id": "PYSEC-1", "fix_versions": ["1.1"], "aliases": ["CVE-1"]})]}
    )
    assert outcome.exit_code == 1 and outcome.audited == 2
    assert outcome.fixable == ["b 1.0: PYSEC-1 CVE-1 -> fixed in 1.1"]


def test_a_vulnerability_without_fix_only_warns() -> None:
    outcome = classify({"dependencies": [dep("a", {"id": "GHSA-x", "fix_versions": []})]})
    assert outcome.exit_code == 0 and outcome.unfixable == ["a 1.0: GHSA-x"] and not outcome.unreachable
    assert any("warning" in line for line in outcome.lines())


def test_no_answer_for_any_package_is_reported_not_passed() -> None:
    report = {"dependencies": [{"name": n, "skip_reason": f"Dependency not found on PyPI: {n}"} for n in ("a", "b")]}
    outcome = classify(report)
    assert outcome.unreachable and "none of the 2" in outcome.unreachable
    assert outcome.lines()[0].startswith("dependency audit: NOT AUDITED")
    assert outcome.exit_code == 0  # CI does not fail for the network; --strict turns this into exit 2


def test_some_skipped_packages_are_listed() -> None:
    outcome = classify({"dependencies": [dep("a"), {"name": "synthgate", "skip_reason": "local"}]})
    assert not outcome.unreachable and outcome.audited == 1 and "1 not audited" in " ".join(outcome.lines())
