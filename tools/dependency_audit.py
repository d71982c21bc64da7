"""Dependency audit: pip-audit over the locked dependencies (constraints.txt), failing only on fixable vulnerabilities.

    python -m tools.dependency_audit [--requirements constraints.txt] [--strict]

Exit codes: 0 when no known vulnerability has a fix (vulnerabilities without a fix are listed as warnings), 1 when
at least one has a fix (upgrade the pin), 0 with a clear NOT AUDITED line when the vulnerability service cannot be
reached or answers for none of the packages (a package mirror without PyPI's JSON API makes pip-audit skip every
package and still print "No known vulnerabilities found"); --strict (or SYNTHGATE_AUDIT_STRICT=1) makes that 2.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

NETWORK_HINTS = (
    "ConnectionError",
    "Max retries exceeded",
    "Temporary failure in name resolution",
    "timed out",
    "Failed to resolve",
    "Name or service not known",
    "ServiceError",
    "NewConnectionError",
)


@dataclass
class AuditOutcome:
    audited: int = 0
    skipped: list[str] = field(default_factory=list)
    fixable: list[str] = field(default_factory=list)
    unfixable: list[str] = field(default_factory=list)
    unreachable: str | None = None  # why the audit could not be done, when it could not

    @property
    def exit_code(self) -> int:
        if self.fixable:
            return 1
        return 0

    def lines(self) -> list[str]:
        out = []
        if self.unreachable:
            out.append(f"dependency audit: NOT AUDITED: {self.unreachable}")
        out += [f"dependency audit: FIXABLE {v}" for v in self.fixable]
        out += [f"dependency audit: warning (no fix released yet) {v}" for v in self.unfixable]
        if self.skipped and not self.unreachable:
            out.append(f"dependency audit: {len(self.skipped)} not audited: {', '.join(self.skipped[:10])}")
        out.append(
            f"dependency audit: {self.audited} packages audited, {len(self.fixable)} fixable and "
            f"{len(self.unfixable)} unfixable known vulnerabilities"
        )
        return out


def classify(report: dict, total: int | None = None) -> AuditOutcome:
    """Read pip-audit's JSON report."""
    outcome = AuditOutcome()
    for dep in report.get("dependencies", []):
        if "skip_reason" in dep:
            outcome.skipped.append(f"{dep.get('name')} ({dep['skip_reason']})")
            continue
        outcome.audited += 1
        for vuln in dep.get("vulns", []):
            label = (
                f"{dep['name']} {dep.get('version', '?')}: {vuln.get('id')} {' '.join(vuln.get('aliases', []))}".strip()
            )
            if vuln.get("fix_versions"):
                outcome.fixable.append(f"{label} -> fixed in {', '.join(vuln['fix_versions'])}")
            else:
                outcome.unfixable.append(label)
    if outcome.audited == 0 and outcome.skipped:
        first = outcome.skipped[0]
        outcome.unreachable = (
            f"the vulnerability service answered for none of the {len(outcome.skipped)} locked packages "
            f"(first: {first}); the package index reachable here has no vulnerability data"
        )
    return outcome


def run(requirements: Path, service: str = "pypi", timeout: int = 600) -> AuditOutcome:
    exe = shutil.which("pip-audit") or str(Path(sys.executable).with_name("pip-audit"))
    if not Path(exe).exists():
        return AuditOutcome(unreachable="pip-audit is not installed: pip install -e '.[audit]'")
    with tempfile.TemporaryDirectory() as tmp:
        report_path = Path(tmp) / "audit.json"
        command = [
            exe,
            "-r",
            str(requirements),
            "--no-deps",
            "--disable-pip",
            "--vulnerability-service",
            service,
            "--format",
            "json",
            "--output",
            str(report_path),
            "--progress-spinner",
            "off",
        ]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return AuditOutcome(unreachable=f"pip-audit did not finish in {timeout} s (vulnerability service too slow)")
        report = json.loads(report_path.read_text()) if report_path.is_file() and report_path.stat().st_size else None
    if report is None:
        stderr = done.stderr.strip().splitlines()
        detail = next((line for line in reversed(stderr) if any(h in line for h in NETWORK_HINTS)), None)
        if detail is not None:
            return AuditOutcome(unreachable=f"the vulnerability service ({service}) cannot be reached: {detail[:300]}")
        raise SystemExit(f"dependency audit: pip-audit failed (exit {done.returncode}): {' / '.join(stderr[-3:])}")
    return classify(report)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requirements", type=Path, default=Path("constraints.txt"))
    parser.add_argument("--service", choices=["pypi", "osv"], help="default: PyPI, then OSV if PyPI gives no answer")
    parser.add_argument("--strict", action="store_true", default=bool(os.environ.get("SYNTHGATE_AUDIT_STRICT")))
    args = parser.parse_args(argv)
    outcome = run(args.requirements, args.service or "pypi")
    if outcome.unreachable and args.service is None:
        fallback = run(args.requirements, "osv")
        if fallback.unreachable:
            fallback.unreachable = f"PyPI: {outcome.unreachable}; OSV: {fallback.unreachable}"
        outcome = fallback
    for line in outcome.lines():
        print(line)
    if outcome.unreachable and args.strict:
        return 2
    return outcome.exit_code


if __name__ == "__main__":
    sys.exit(main())
