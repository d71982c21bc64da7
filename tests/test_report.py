"""The HTML report: rendered from a real (tiny) DP generator's output and opened in headless Chromium.

The header must answer a data steward in ten seconds (which table, which version, how many rows, when, the verdict
in one sentence, epsilon of this run and of the table against its cap, the code version, how to open the MLflow run),
each gate must say in plain words what it checks, datetime axes must show dates, spiky columns must show something,
and the page must fit the window.
"""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from synthgate import report as report_module
from synthgate.disclosures import DISCLOSED_EXCEPTIONS
from synthgate.evaluation.scorecard import evaluate
from synthgate.gates import evaluate_gates
from synthgate.generator import DPSynthesizer
from synthgate.generator.codecs import NumericCodec
from synthgate.report import (
    GATE_EXPLANATIONS,
    ReportContext,
    RunFacts,
    _numeric_plot,
    _shares,
    _spike_tokens,
    _tokens,
    write_report,
)
from synthgate.schema import Column, ColumnKind
from synthgate.spec import ColumnPolicy, Gates, PrivacyBudget, Training
from tests.browser import chromium, needs_chromium
from tests.conftest import PEOPLE_COLUMNS

COLUMNS = [*PEOPLE_COLUMNS, Column("bonus", ColumnKind.INTEGER, "BIGINT")]  # bonus: 90% zeros, a spike
POLICIES = {"customer_id": ColumnPolicy(policy="fake", fake="id"), "email": ColumnPolicy(policy="fake", fake="email")}
SECTIONS = [
    "summary",
    "facts",
    "gates",
    "budget",
    "fidelity",
    "utility",
    "privacy",
    "validity",
    "distributions",
    "correlations",
    "sample",
    "real-data",
    "disclosures",
    "timing",
]
COMMAND = "mlflow ui --backend-store-uri sqlite:////srv/synthgate/mlflow.db"
PAGE = "http://127.0.0.1:5000/#/experiments/3/runs/run123?workflowType=machine_learning"
FACTS = RunFacts(
    table="synth.people_synthetic",
    source_table="crm.people",
    rows=1000,
    epsilon_spent=0.97,
    started_at=datetime(2024, 5, 1, 10, 30, tzinfo=UTC),
    trigger="schedule",
    next_version=5,
    current_version=4,
    epsilon_total=3.5,
    epsilon_cap=5.0,
    git_commit="0123456789abcdef" * 2 + "01234567",
    git_dirty=True,
)


@pytest.fixture(scope="module")
def fitted(people):
    rng = np.random.default_rng(3)
    frame = people.assign(bonus=np.where(rng.random(len(people)) < 0.9, 0, rng.integers(100, 5000, len(people))))
    train, holdout = frame.iloc[:1500], frame.iloc[1500:]
    synth = DPSynthesizer(
        COLUMNS, POLICIES, PrivacyBudget(epsilon=4.0, delta=1e-5), Training(epochs=3, seed=2), "churned"
    )
    synth.fit(train)
    return train, holdout, synth, synth.sample(1000)


@pytest.fixture(scope="module")
def report(fitted, tmp_path_factory) -> tuple[Path, dict[str, bytes], list[str], int]:
    train, holdout, synth, synthetic = fitted
    ev = evaluate(
        train=train,
        holdout=holdout,
        synthetic=synthetic,
        columns=synth.learned,
        target="churned",
        synthetic_suite_failures=[],
        keys=["customer_id"],
        attacks=100,
    )
    verdicts = evaluate_gates(
        Gates(min_quality=0.99, min_tstr_auc=0.0, max_utility_gap=1.0), ev.scores
    )  # quality: held back on purpose
    ctx = ReportContext(
        "people",
        "run123",
        synth.summary.epsilon,
        1e-5,
        synth.summary.accounting,
        ev.scores,
        verdicts,
        {"train": 1.0},
        f"{COMMAND}  # then open {PAGE}",
        ev,
        ("customer_id",),
        FACTS,
    )
    written = write_report(tmp_path_factory.mktemp("report") / "report.html", ctx, train, synthetic, synth)
    return written.path, written.plots, [v.name for v in verdicts if not v.passed], len(verdicts)


def test_report_is_self_contained_and_holds_no_real_row(report, people):
    path, plots, failed, _ = report
    page = path.read_text()
    assert "Verdict: HELD BACK" in page and failed == ["quality"]
    assert "http://" not in page.replace(f'href="{html.escape(PAGE)}"', "").replace(html.escape(PAGE), "")
    assert "<script" not in page  # nothing to fetch, nothing to run
    assert page.count("data:image/png;base64,") == len(plots) == 8 + 1  # 8 learned columns + the heatmap
    assert not any(email in page for email in people["email"].head(200))
    for section in ("singling_out", "linkability", "inference:churned", "gradient boosting", "linear", "customer_id"):
        assert section in page
    assert "<th>attacks</th>" not in page  # the number of attacks, capped at the holdout's rows, told its size
    assert all(html.escape(line) in page for line in DISCLOSED_EXCEPTIONS)  # word for word, as README prints them


def test_the_header_answers_which_table_version_rows_when_verdict_and_budget(report):
    page = report[0].read_text()
    assert (
        f"Verdict: HELD BACK. 1 of {report[3]} gates failed (Overall likeness): nothing from this run is published; "
        "<code>synth.people_synthetic</code> stays at version 4."
    ) in page
    for fact in (
        "5, published if every gate passed (then at version 4; the catalog says)",
        "1,000 synthetic rows",
        "2024-05-01 10:30 UTC, started by schedule",
        "epsilon 0.97 spent by this run; 3.5 spent on this table in all, of its cap 5 (1.5 left)",
        "with uncommitted changes (dirty working tree)",
        f"<code id='mlflow-command'>{html.escape(COMMAND)}</code>",
    ):
        assert fact in page, fact
    assert (
        "sqlite:///" not in page.split("id='mlflow-link'")[1].split(">")[0]
    )  # the link is the UI page, never the store


def test_a_spiky_column_gets_its_spike_beside_the_histogram_and_dates_are_dates(fitted):
    train, _, synth, synthetic = fitted
    codecs = {c.name: k for c, k in zip(synth.learned, synth.codecs, strict=True) if isinstance(k, NumericCodec)}
    bonus, column = codecs["bonus"], next(c for c in synth.learned if c.name == "bonus")
    shares, _ = _shares(bonus, [_tokens(bonus, column, f["bonus"]) for f in (train, synthetic)])
    spikes = _spike_tokens(bonus, shares)
    zeros = int(bonus.encode(pd.Series([0]))[0])
    assert shares[0][zeros] > 0.8
    fig = _numeric_plot(column, bonus, train, synthetic)
    bars = fig.axes[-1]
    if zeros in spikes:  # the zeros: a bar of their own, not a sliver on a 0..5000 axis
        assert max(p.get_height() for p in bars.patches) > 0.8
    else:  # about 1 fit in 20: the range release found the zeros alone (the 150 values of 100..5000 are too thin)
        assert float(bonus.fine_edges[-1]) < 100
    if bonus.n_coarse == 1 or float(bonus.fine_edges[-1]) < 100:  # the DP range missed some non-zero values (below
        labels = [t.get_text() for t in bars.get_xticklabels()]  # or above it): the rows the generator cannot produce
        assert any(label.startswith(("> ", "< ")) for label in labels), labels  # are shown, on their side
        outside = [share[bonus.n_tokens] + share[bonus.n_tokens + 1] for share in shares]
        assert 0.0 < outside[0] < 0.15 and outside[1] == 0
    signup = next(c for c in synth.learned if c.name == "signup")
    fig = _numeric_plot(signup, codecs["signup"], train, synthetic)
    fig.canvas.draw()
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels() if t.get_text()]
    assert labels and all(re.fullmatch(r"20\d\d-\d\d-\d\d", label) for label in labels), labels
    visits = next(c for c in synth.learned if c.name == "visits")  # 10% NULL: a bar of its own
    fig = _numeric_plot(visits, codecs["visits"], train, synthetic)
    assert "NULL" in [t.get_text() for t in fig.axes[-1].get_xticklabels()]


@needs_chromium
def test_report_renders_its_header_gates_and_link_in_headless_chromium(report):
    from selenium.webdriver.common.by import By

    path, _, failed, gate_count = report
    with chromium(1280, 900) as driver:
        driver.get(path.resolve().as_uri())
        assert driver.title == "Synthgate report: people"
        for section in SECTIONS:
            element = driver.find_element(By.ID, section)
            assert element.is_displayed() and element.size["height"] > 10, section
        images = driver.find_elements(By.TAG_NAME, "img")
        assert len(images) == 9
        assert all(
            driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 100", i) for i in images
        )
        # the header, read as a person reads it
        verdict = driver.find_element(By.CSS_SELECTOR, "#summary .verdict").text
        assert verdict.startswith("Verdict: HELD BACK. 1 of") and "synth.people_synthetic stays at version 4" in verdict
        facts = {
            row.find_element(By.TAG_NAME, "th").text: row.find_element(By.TAG_NAME, "td").text
            for row in driver.find_elements(By.CSS_SELECTOR, "#facts tr")
        }
        assert list(facts) == ["Table", "Version", "Rows", "When", "Privacy budget", "Code", "MLflow run"]
        assert facts["Table"] == "synth.people_synthetic, a synthetic copy of crm.people"
        assert facts["Version"] == "5, published if every gate passed (then at version 4; the catalog says)"
        assert facts["Rows"] == "1,000 synthetic rows"
        assert facts["When"] == "2024-05-01 10:30 UTC, started by schedule"
        assert facts["Privacy budget"].startswith(
            "epsilon 0.97 spent by this run; 3.5 spent on this table in all, of its cap 5"
        )
        assert facts["Code"] == "commit 0123456789ab with uncommitted changes (dirty working tree)"
        # the MLflow run: the command that opens the local store's UI, then the page, as a working link
        assert driver.find_element(By.ID, "mlflow-command").text == COMMAND
        assert driver.find_element(By.ID, "mlflow-link").get_attribute("href") == PAGE
        # every gate with a plain name and a one-line explanation; the failed one marked
        rows = driver.find_elements(By.CSS_SELECTOR, "#gates tr[data-gate]")
        assert len(rows) == gate_count
        for row in rows:
            name = row.get_attribute("data-gate")
            title, explanation = GATE_EXPLANATIONS[name]
            assert row.find_element(By.TAG_NAME, "b").text == title
            assert row.find_element(By.CSS_SELECTOR, "td.explain").text == explanation
        assert [r.get_attribute("data-gate") for r in driver.find_elements(By.CSS_SELECTOR, "#gates tr.bad")] == failed
        # the page fits the window: no horizontal scrolling (the sample scrolls inside its own box)
        assert driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
        sample = driver.find_element(By.CSS_SELECTOR, "#sample .scroll")
        assert sample.size["width"] <= 1280


def test_spearman_on_codes_is_pandas_spearman_with_zero_for_a_constant_column():
    rng = np.random.default_rng(5)
    codes = np.stack([rng.integers(0, 4, 300), rng.integers(0, 30, 300), np.full(300, 2), rng.integers(0, 2, 300)])
    codes[1] += codes[0] * 3  # related, with ties
    expected = pd.DataFrame(codes.T).corr(method="spearman").fillna(0.0).to_numpy()
    got = report_module._spearman(codes)
    off = ~np.eye(4, dtype=bool)
    np.testing.assert_allclose(got[off], expected[off], atol=1e-12)


def test_a_wide_tables_report_plots_the_target_and_its_worst_columns(fitted, report, monkeypatch, tmp_path):
    train, _, synth, synthetic = fitted
    names = [c.name for c in synth.learned]
    assert len(names) > 4
    shapes = dict.fromkeys(names, 0.9) | {names[1]: 0.5, names[3]: 0.7}
    missing = names[2]  # no score: a column the synthetic rows lack is among the worst
    del shapes[missing]
    monkeypatch.setattr(report_module, "MAX_PLOTTED", 4)
    assert report_module.plotted_columns(synth, shapes) == [
        n for n in names if n in {names[1], missing, names[3], "churned"}
    ]
    path, _, _, _ = report
    ctx = SimpleNamespace(evaluation=SimpleNamespace(fidelity=SimpleNamespace(per_column=shapes)))
    monkeypatch.setattr(
        report_module, "render", lambda ctx, plots, heatmap, sample, *, learned: f"{sorted(plots)} {learned}"
    )
    written = write_report(tmp_path / "wide.html", ctx, train, synthetic, synth)  # type: ignore[arg-type]
    assert sorted(n.removeprefix("distribution_") for n in written.plots if n != "correlation_difference") == sorted(
        {names[1], missing, names[3], "churned"}
    )
    assert written.path.read_text() == f"{sorted({names[1], missing, names[3], 'churned'})} {len(names)}"
    assert "Shown: 4 of the 9 learned columns, those with the lowest" in report_module._plotted_note(4, 9, ranked=True)
    assert report_module.plotted_columns(synth, None) == [*names[:3], "churned"]  # no scores: the first ones
    page = path.read_text()
    assert "Shown:" not in page and "largest differences" not in page  # a narrow table: every column, no note


def test_a_wide_tables_heatmap_keeps_the_columns_with_the_largest_differences(fitted, monkeypatch):
    train, _, synth, synthetic = fitted
    names, full = report_module.correlation_difference(train, synthetic, synth)
    assert names == [c.name for c in synth.learned] and np.all(np.diag(full) == 0)
    monkeypatch.setattr(report_module, "MAX_PLOTTED", 3)
    kept, diff = report_module.correlation_difference(train, synthetic, synth)
    largest = sorted(np.argsort(-full.max(axis=1), kind="stable")[:3])
    assert kept == [names[i] for i in largest] and diff.shape == (3, 3)
    assert diff.max() == full.max()  # the largest difference is among the kept columns


def test_plots_read_a_bounded_subset_of_each_side_and_the_sample_the_synthetic_rows(fitted, monkeypatch, tmp_path):
    train, _, synth, synthetic = fitted
    read: dict[str, list[int]] = {"plots": [], "heatmap": []}
    plots, heatmap = report_module.column_plots, report_module.correlation_plot
    monkeypatch.setattr(report_module, "MAX_PLOTTED_ROWS", 300)
    monkeypatch.setattr(
        report_module, "column_plots", lambda r, s, *a: read["plots"].extend([len(r), len(s)]) or plots(r, s, *a)
    )
    monkeypatch.setattr(
        report_module, "correlation_plot", lambda r, s, m: read["heatmap"].extend([len(r), len(s)]) or heatmap(r, s, m)
    )
    monkeypatch.setattr(report_module, "render", lambda ctx, plots, heatmap, sample, *, learned: str(len(sample)))
    ctx = SimpleNamespace(evaluation=None)
    written = write_report(tmp_path / "bounded.html", ctx, train, synthetic, synth)  # type: ignore[arg-type]
    assert read == {"plots": [300, 300], "heatmap": [300, 300]} and len(train) > 300 and len(synthetic) > 300
    assert written.path.read_text() == str(len(synthetic))
    assert len(written.plots) == len(synth.learned) + 1  # every column and the heatmap, drawn from the subset
