"""The disclosed exceptions are printed word for word in README (and by every report: tests/test_report.py)."""

from pathlib import Path

from synthgate.disclosures import DISCLOSED_EXCEPTIONS

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_prints_every_disclosed_exception_word_for_word():
    text = README.read_text()
    missing = [line for line in DISCLOSED_EXCEPTIONS if line not in text]
    assert DISCLOSED_EXCEPTIONS and missing == []
