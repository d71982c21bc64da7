"""The users' three jobs in a browser, on a real Prefect server and a real MLflow tracking server (issue 16).

The operator starts a refresh from the Prefect UI (Run > Quick run, the form filled in as a person does), then reads
the flow run's page (its state, its summary artifact and the MLflow link in it); the auditor follows that link to the
MLflow run (its name, metrics and parameters); the data steward opens the run's HTML report (its header, its MLflow
link, each gate's plain explanation). Each step's wall time and each screenshot's description are printed.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx

from tests.browser import body_text, console_errors, wait_for_text


class Journey:
    """Wall times of the steps and the screenshots taken, printed as they come (visible with ``pytest -s``)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder / "screenshots"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.timings: dict[str, float] = {}
        self.shots: dict[Path, str] = {}

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        began = time.monotonic()
        try:
            yield
        finally:
            self.record(name, time.monotonic() - began)

    def record(self, name: str, seconds: float) -> None:
        self.timings[name] = seconds
        print(f"journey: {name}: {seconds:.1f} s", flush=True)

    def shot(self, driver: Any, name: str, description: str) -> Path:
        """A screenshot of the page as it is now; ``description`` says what it shows (checked before it is taken)."""
        path = self.folder / f"{len(self.shots) + 1:02d}-{name}.png"
        assert driver.save_screenshot(str(path)), path
        self.shots[path] = description
        print(f"journey: screenshot {path}: {description}", flush=True)
        return path

    def summary(self) -> str:
        lines = ["journey timings:"] + [f"  {k}: {v:.1f} s" for k, v in self.timings.items()]
        lines += ["journey screenshots:"] + [f"  {p.name}: {d}" for p, d in self.shots.items()]
        return "\n".join(lines)


def ui_base(api_url: str) -> str:
    """The Prefect UI's address: the server's, without ``/api``."""
    return api_url.removesuffix("/api")


def _button(scope: Any, label: str, seconds: float = 60) -> Any:
    """The visible button whose text is ``label``."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def find(_: Any) -> Any:
        found = [
            b for b in scope.find_elements(By.XPATH, f".//button[normalize-space(.)='{label}']") if b.is_displayed()
        ]
        return found[-1] if found else None

    return WebDriverWait(scope if hasattr(scope, "get") else scope.parent, seconds).until(find, f"no button {label!r}")


def quick_run(
    driver: Any, journey: Journey, api_url: str, deployment_id: UUID, spec_path: str, epsilon: float, rows: int
) -> UUID:
    """Run > Quick run on the deployment's page in the Prefect UI, with the form filled in as a person does (the spec
    path typed over the default, epsilon and rows switched from None to a number and typed), then Run. Returns the
    id of the flow run the click created (the one run of the deployment that the server's scheduler did not).

    The server answers 503 to an error its clients may retry (its SQLite database busy with the scheduler and the
    worker: a CI run got one); Prefect's Python client retries it, its UI shows the error, and a person runs again:
    so does this, up to twice, on a 503 from ``create_flow_run``."""
    before = {r["id"] for r in _manual_runs(api_url, deployment_id)}
    with journey.step("page load: Prefect UI deployment page"):
        driver.get(f"{ui_base(api_url)}/deployments/deployment/{deployment_id}")
        _button(driver, "Run")  # the page is there once its Run button is
    for attempt in range(3):
        _fill_and_submit_quick_run(driver, journey, spec_path, epsilon, rows, shoot=attempt == 0)
        created, errors = _run_created(driver, api_url, deployment_id, before)
        if created:
            assert len(created) == 1, created
            return UUID(created[0]["id"])
        if not any("create_flow_run" in e and "503" in e for e in errors) or attempt == 2:
            break
    driver.save_screenshot(str(journey.folder / "prefect-quick-run-no-run.png"))  # the page after the click
    raise AssertionError(
        f"clicking Run created no flow run; the page reads {body_text(driver)!r}; console errors: {errors}"
    )


def _fill_and_submit_quick_run(
    driver: Any, journey: Journey, spec_path: str, epsilon: float, rows: int, *, shoot: bool
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    _button(driver, "Run").click()
    _button(driver, "Quick run", 10).click()
    modal = WebDriverWait(driver, 30).until(
        lambda d: next(
            iter(
                d.find_elements(
                    By.XPATH, "//*[contains(@class,'p-modal__card')][.//*[normalize-space(.)='Run Deployment']]"
                )
            ),
            None,
        ),
        "the Quick run form did not open",
    )
    spec_field = modal.find_element(By.TAG_NAME, "textarea")
    assert spec_field.get_attribute("value") == "deployments/tables/adult.yaml"  # the deployment's default
    spec_field.send_keys(Keys.CONTROL, "a")
    spec_field.send_keys(spec_path)
    for kind in ("float", "int"):  # epsilon and rows: None by default; a person switches them to a number
        _button(modal, kind, 10).click()
    epsilon_field, rows_field = WebDriverWait(driver, 10).until(
        lambda d: (
            [i for i in modal.find_elements(By.CSS_SELECTOR, "input[type=number]") if i.is_displayed()][:2] or None
        )
    )
    epsilon_field.send_keys(f"{epsilon:g}")
    rows_field.send_keys(str(rows))
    typed = [f.get_attribute("value") for f in (spec_field, epsilon_field, rows_field)]
    assert typed == [spec_path, f"{epsilon:g}", str(rows)], typed
    if shoot:
        journey.shot(
            driver,
            "prefect-quick-run-form",
            f"the Prefect UI's Quick run form of deployment refresh-table/adult, spec path {spec_path}, epsilon "
            f"{epsilon:g}, rows {rows}, before Run is clicked",
        )
    submit = _button(modal, "Run", 10)
    WebDriverWait(driver, 30).until(lambda _: submit.is_enabled(), "the form's Run button stays disabled")
    submit.click()


def _run_created(
    driver: Any, api_url: str, deployment_id: UUID, before: set[str], seconds: float = 60
) -> tuple[list[dict[str, Any]], list[str]]:
    """The runs of the deployment that were not there ``before``, once there are some, and the page's console errors
    meanwhile; no runs when ``seconds`` pass or a request fails with 503 first."""
    errors: list[str] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        created = [r for r in _manual_runs(api_url, deployment_id) if r["id"] not in before]
        errors += console_errors(driver)
        if created or any("503" in e for e in errors):
            return created, errors
        time.sleep(0.5)
    return [], errors


def _manual_runs(api_url: str, deployment_id: UUID) -> list[dict[str, Any]]:
    # the server's scheduler adds runs days ahead: the earliest expected start first, so a run started now is listed
    body = {"deployments": {"id": {"any_": [str(deployment_id)]}}, "sort": "EXPECTED_START_TIME_ASC", "limit": 200}
    response = httpx.post(f"{api_url}/flow_runs/filter", json=body, timeout=10)
    response.raise_for_status()
    return [r for r in response.json() if not r["auto_scheduled"]]


def first_state_message(api_url: str, flow_run_id: UUID) -> str | None:
    """The message of the flow run's first state, as the flow reads it to tell who started the run."""
    response = httpx.get(f"{api_url}/flow_run_states/", params={"flow_run_id": str(flow_run_id)}, timeout=10)
    response.raise_for_status()
    states = sorted(response.json(), key=lambda s: s["timestamp"])
    return states[0]["message"] if states else None


def wait_published(catalog: Any, is_final: Any, timeout: float) -> list[dict[str, Any]]:
    """The catalog's rows once it holds one (the table is published), polled every half second; fails early when
    the run ends without publishing (``is_final()`` true and still no row)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = catalog()
        if rows:
            return rows
        if is_final():
            rows = catalog()
            assert rows, "the flow run ended and nothing was published"
            return rows
        time.sleep(0.5)
    raise TimeoutError(f"nothing published after {timeout} s")


def _click_tab(driver: Any, label: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, 30).until(
        lambda d: next((t for t in d.find_elements(By.CSS_SELECTOR, "li.p-tab") if t.text == label), None),
        f"no tab {label!r}",
    ).click()


def check_flow_run_page(
    driver: Any,
    journey: Journey,
    api_url: str,
    flow_run_id: UUID,
    flow_run_name: str,
    mlflow_url: str,
    mlflow_run_id: str,
) -> str:
    """The flow run's page in the Prefect UI: its state badge reads Completed; its Artifacts tab lists the summary;
    the summary's page holds the MLflow run as a link to the tracking server (not a ``sqlite:`` URI, not an
    ``mlflow ui`` command). Returns that link's address."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    with journey.step("page load: Prefect UI flow run page"):
        driver.get(f"{ui_base(api_url)}/runs/flow-run/{flow_run_id}")
        wait_for_text(driver, flow_run_name)
        badge = WebDriverWait(driver, 60).until(
            lambda d: next(iter(d.find_elements(By.CSS_SELECTOR, ".state-badge")), None), "no state badge"
        )
    assert badge.text == "Completed", badge.text
    assert "state--completed" in badge.get_attribute("class")
    journey.shot(
        driver,
        "prefect-flow-run",
        f"the Prefect UI's page of flow run {flow_run_name}: the state badge "
        "reads Completed, with the task runs' timeline and the run's logs",
    )
    _click_tab(driver, "Artifacts")
    card = WebDriverWait(driver, 30).until(
        lambda d: next(
            (
                c
                for c in d.find_elements(By.CSS_SELECTOR, ".artifact-card__title")
                if c.text.replace("\n", "") == "synthgate-people-summary"
            ),
            None,
        ),
        "no summary artifact on the Artifacts tab",
    )
    journey.shot(
        driver,
        "prefect-artifacts",
        f"the Artifacts tab of flow run {flow_run_name}: the markdown summary "
        "synthgate-people-summary (Refresh of people: PUBLISHED) and the gates table",
    )
    with journey.step("page load: Prefect UI summary artifact"):
        card.click()
        text = wait_for_text(driver, "Synthgate refresh of people: PUBLISHED")
    links = [a for a in driver.find_elements(By.TAG_NAME, "a") if a.text == mlflow_run_id]
    assert len(links) == 1, [a.get_attribute("href") for a in driver.find_elements(By.TAG_NAME, "a")]
    href = links[0].get_attribute("href")
    assert href.startswith(f"{mlflow_url}/#/experiments/") and href.endswith(
        f"/runs/{mlflow_run_id}?workflowType=machine_learning"
    ), href
    assert "sqlite:" not in text and "mlflow ui --backend-store-uri" not in text, text
    journey.shot(
        driver,
        "prefect-summary-artifact",
        "the summary artifact rendered in the Prefect UI: PUBLISHED, "
        f"source and synthetic table, epsilon spent against the budget, the MLflow run {mlflow_run_id} as a "
        "link to the tracking server, the scores and each gate with its plain name",
    )
    with journey.step("page load: MLflow run page, from the artifact's link"):
        windows = set(driver.window_handles)
        links[0].click()  # the UI opens it in a new tab
        WebDriverWait(driver, 10).until(lambda d: len(d.window_handles) > len(windows), "the link opened no tab")
        driver.switch_to.window(next(iter(set(driver.window_handles) - windows)))
        wait_for_text(driver, "Metrics (")
    assert driver.current_url == href, driver.current_url
    return href


def _value_after(lines: list[str], section: str, name: str) -> str:
    """In the MLflow run page's text, the value shown after ``name`` in the table headed ``section`` ("Metrics (")."""
    start = next(i for i, line in enumerate(lines) if line.startswith(section))
    index = lines.index(name, start)
    return lines[index + 1]


def check_mlflow_run_page(driver: Any, journey: Journey, run: Any) -> None:
    """The MLflow run page (already open): its name (table, version, trigger), the status, the trigger tag, the
    epsilon and gate metrics and the parameters, each as MLflow recorded it."""
    from selenium.webdriver.common.by import By

    name = run.info.run_name
    text = wait_for_text(driver, name)
    lines = text.splitlines()
    assert name in lines and "Finished" in lines
    trigger = run.data.tags["synthgate.trigger"]
    assert "synthgate.trigger" in lines and lines[lines.index("synthgate.trigger") + 1] == f": {trigger}"
    journey.shot(
        driver,
        "mlflow-run",
        f"the MLflow run page of '{name}' on the tracking server: status Finished, "
        "the tags (synthgate.trigger, the Prefect flow run), the registered model and the audit description",
    )
    metrics = run.data.metrics
    for metric in (
        "epsilon_spent",
        "epsilon_table_total",
        "epsilon_table_cap",
        "epsilon_this_run",
        "gates_passed",
        "quality",
        "gate_quality",
    ):
        shown = _value_after(lines, "Metrics (", metric)
        assert float(shown) == pytest_approx(metrics[metric]), (metric, shown, metrics[metric])
    for param in ("epsilon_budget", "delta", "epochs", "source_table", "target_table"):
        assert _value_after(lines, "Parameters (", param) == run.data.params[param], param
    header = next(e for e in driver.find_elements(By.XPATH, "//*[starts-with(normalize-space(text()), 'Metrics (')]"))
    driver.execute_script("arguments[0].scrollIntoView()", header)
    journey.shot(
        driver,
        "mlflow-metrics",
        f"the metrics table of '{name}': epsilon_this_run (the accountant after "
        "the last epoch) first, then the scores; the epsilon_* and gate_* values are checked against MLflow",
    )


def pytest_approx(value: float) -> Any:
    import pytest

    return pytest.approx(value, rel=1e-6, abs=1e-9)


def report_facts(driver: Any) -> dict[str, str]:
    from selenium.webdriver.common.by import By

    return {
        row.find_element(By.TAG_NAME, "th").text: row.find_element(By.TAG_NAME, "td").text
        for row in driver.find_elements(By.CSS_SELECTOR, "#facts tr")
    }


def check_report(
    driver: Any,
    journey: Journey,
    path: Path,
    expected: dict[str, str],
    budget_prefix: str,
    verdict: str,
    mlflow_href: str,
    run_name: str,
) -> None:
    """The HTML report (opened from disk): the verdict sentence, the header's facts, the MLflow link (followed: it
    opens the run on the tracking server) and every gate's plain one-line explanation."""
    from selenium.webdriver.common.by import By

    from synthgate.report import GATE_EXPLANATIONS

    with journey.step("page load: HTML report"):
        driver.get(path.resolve().as_uri())
        shown_verdict = driver.find_element(By.CSS_SELECTOR, "#summary .verdict").text
    assert shown_verdict == verdict, shown_verdict
    facts = report_facts(driver)
    for key, value in expected.items():
        assert facts.get(key) == value, (key, facts.get(key), value)
    assert facts["Privacy budget"].startswith(budget_prefix), (facts["Privacy budget"], budget_prefix)
    assert facts["When"].endswith("UTC, started by ui"), facts["When"]
    link = driver.find_element(By.ID, "mlflow-link")
    assert link.get_attribute("href") == mlflow_href  # the run's page on the tracking server
    assert driver.find_elements(By.ID, "mlflow-command") == []  # a server: nothing to start first
    journey.shot(
        driver,
        "report-header",
        f"the report's header: '{verdict}', then table, version, rows, when and "
        f"by whom, '{facts['Privacy budget']}', the code version and the MLflow link",
    )
    rows = driver.find_elements(By.CSS_SELECTOR, "#gates tr[data-gate]")
    assert rows, "the report shows no gate"
    for row in rows:
        gate = row.get_attribute("data-gate")
        title, explanation = GATE_EXPLANATIONS[gate]
        assert explanation and "\n" not in explanation, gate
        assert row.find_element(By.TAG_NAME, "b").text == title, gate
        assert row.find_element(By.CSS_SELECTOR, "td.explain").text == explanation, gate
    assert not driver.find_elements(By.CSS_SELECTOR, "#gates tr.bad")
    driver.execute_script("arguments[0].scrollIntoView()", driver.find_element(By.ID, "gates"))
    journey.shot(
        driver,
        "report-gates",
        f"the report's gates table: {len(rows)} gates, each with its plain name, a "
        "one-line explanation of what it checks, measured and required values, all pass",
    )
    with journey.step("page load: MLflow run page, from the report's link"):
        link = driver.find_element(By.ID, "mlflow-link")
        driver.execute_script("arguments[0].scrollIntoView()", link)
        link.click()
        wait_for_text(driver, run_name)
    assert driver.current_url == mlflow_href, driver.current_url
    journey.shot(driver, "mlflow-from-report", f"the MLflow run '{run_name}', opened by clicking the report's link")


__all__ = [
    "Journey",
    "body_text",
    "check_flow_run_page",
    "check_mlflow_run_page",
    "check_report",
    "first_state_message",
    "quick_run",
    "ui_base",
    "wait_for_text",
    "wait_published",
]
