"""The HTML report: rendered from a real (tiny) DP generator's output and opened in headless Chromium."""

from __future__ import annotations

import html
import os
import shutil
from pathlib import Path

import pytest

from synthgate.disclosures import DISCLOSED_EXCEPTIONS
from synthgate.evaluation.scorecard import evaluate
from synthgate.gates import evaluate_gates
from synthgate.generator import DPSynthesizer
from synthgate.report import ReportContext, write_report
from synthgate.spec import ColumnPolicy, Gates, PrivacyBudget, Training
from tests.conftest import PEOPLE_COLUMNS

COLUMNS = PEOPLE_COLUMNS
POLICIES = {"customer_id": ColumnPolicy(policy="fake", fake="id"), "email": ColumnPolicy(policy="fake", fake="email")}
SECTIONS = ["summary", "gates", "budget", "fidelity", "utility", "privacy", "validity", "distributions", "correlations",
            "sample", "real-data", "disclosures", "timing"]
CHROMEDRIVER = "/usr/bin/chromedriver"


@pytest.fixture(scope="module")
def report(people, tmp_path_factory) -> tuple[Path, dict[str, bytes], list[str]]:
    train, holdout = people.iloc[:1500], people.iloc[1500:]
    synth = DPSynthesizer(COLUMNS, POLICIES, PrivacyBudget(epsilon=4.0, delta=1e-5), Training(epochs=3, seed=2), "churned")
    synth.fit(train)
    synthetic = synth.sample(1000)
    ev = evaluate(train, holdout, synthetic, synth.learned, "churned", [], keys=["customer_id"], attacks=100)
    verdicts = evaluate_gates(Gates(min_quality=0.99), ev.scores)  # one gate held back on purpose
    ctx = ReportContext("people", "run123", synth.summary.epsilon, 1e-5, synth.summary.accounting, ev.scores, verdicts,
                        {"train": 1.0}, "sqlite:///x#run=run123", ev, ("customer_id",))
    written = write_report(tmp_path_factory.mktemp("report") / "report.html", ctx, train, synthetic, synth)
    return written.path, written.plots, [v.name for v in verdicts if not v.passed]


def test_report_is_self_contained_and_holds_no_real_row(report, people):
    path, plots, failed = report
    page = path.read_text()
    assert "Verdict: HELD BACK" in page and "Failed gates: quality" in page and failed[0] == "quality"
    assert "http://" not in page.replace('href="sqlite', "") and "<script" not in page  # nothing to fetch
    assert page.count("data:image/png;base64,") == len(plots) == 7 + 1  # 7 learned columns + the heatmap
    assert not any(email in page for email in people["email"].head(200))
    for section in ("singling_out", "linkability", "inference:churned", "gradient boosting", "linear", "customer_id"):
        assert section in page
    assert all(html.escape(line) in page for line in DISCLOSED_EXCEPTIONS)  # word for word, as README prints them


@pytest.mark.skipif(not Path(CHROMEDRIVER).exists() or not shutil.which("chromium"),
                    reason="Chromium and its driver come from Debian: apt-get install chromium chromium-driver")
def test_report_renders_every_section_in_headless_chromium(report):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    options = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(flag)
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    os.environ.setdefault("SE_AVOID_STATS", "true")
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        driver.get(report[0].resolve().as_uri())
        assert driver.title == "Synthgate report: people"
        for section in SECTIONS:
            element = driver.find_element(By.ID, section)
            assert element.is_displayed() and element.size["height"] > 10, section
        images = driver.find_elements(By.TAG_NAME, "img")
        assert len(images) == 8
        assert all(driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 100", i) for i in images)
        gates = driver.find_elements(By.CSS_SELECTOR, "#gates tr.bad")
        assert [row.find_element(By.TAG_NAME, "td").text for row in gates] == report[2]
        assert "HELD BACK" in driver.find_element(By.CSS_SELECTOR, "#summary .verdict").text
    finally:
        driver.quit()
