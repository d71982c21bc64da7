"""deployments/prefect.yaml: generated from the table specs, one deployment each, schedules from the specs."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from synthgate.deployments import PREFECT_FILE, prefect_config, render_prefect_yaml
from synthgate.errors import SpecError
from synthgate.flows.deploy import check_prefect_yaml
from synthgate.spec import load_spec
from tests.conftest import ROOT


def test_the_committed_file_is_the_generated_one():
    assert (ROOT / PREFECT_FILE).read_text() == render_prefect_yaml(ROOT), "run `synthgate deploy --write`"
    check_prefect_yaml(ROOT)


def test_one_deployment_per_spec_with_its_schedule():
    config = yaml.safe_load((ROOT / PREFECT_FILE).read_text())
    by_name = {d["name"]: d for d in config["deployments"]}
    specs = sorted((ROOT / "deployments" / "tables").glob("*.yaml"))
    assert set(by_name) == {load_spec(p).name for p in specs} | {"all-tables"}
    for path in specs:
        spec, deployment = load_spec(path), by_name[load_spec(path).name]
        assert deployment["entrypoint"] == "synthgate.flows.refresh:refresh_table"
        assert deployment["enforce_parameter_schema"] is True
        assert deployment["parameters"]["request"]["spec_path"] == path.relative_to(ROOT).as_posix()
        assert (ROOT / deployment["parameters"]["request"]["spec_path"]).is_file()
        if spec.schedule:
            [schedule] = deployment["schedules"]
            assert (schedule["cron"], schedule["timezone"]) == (spec.schedule.cron, spec.schedule.timezone)
            assert schedule["parameters"]["trigger"] == "schedule"
    assert by_name["adult"]["schedules"][0]["timezone"] == "Europe/Berlin"
    assert by_name["all-tables"]["entrypoint"] == "synthgate.flows.refresh_all:refresh_all"
    assert all(d["work_pool"]["name"] == "{{ $SYNTHGATE_WORK_POOL }}" for d in config["deployments"])


def test_a_stale_file_is_refused(tmp_path: Path):
    shutil.copytree(ROOT / "deployments", tmp_path / "deployments")
    (tmp_path / "deployments" / "tables" / "adult.yaml").write_text(
        (ROOT / "deployments" / "tables" / "adult.yaml").read_text().replace('cron: "0 2 * * *"', 'cron: "30 4 * * 1"')
    )
    with pytest.raises(SpecError, match="out of date"):
        check_prefect_yaml(tmp_path)
    assert prefect_config(tmp_path)["deployments"][0]["schedules"][0]["cron"] == "30 4 * * 1"


def test_the_deployed_parameter_schema_has_bounds_and_descriptions():
    from prefect.utilities.callables import parameter_schema

    from synthgate.flows.refresh import refresh_table

    schema = parameter_schema(refresh_table).model_dump_for_openapi()
    fields = schema["definitions"]["RefreshParameters"]["properties"]
    assert fields["epsilon"]["anyOf"][0] == {"exclusiveMinimum": 0, "maximum": 100, "type": "number"}
    assert fields["rows"]["anyOf"][0]["minimum"] == 1
    assert all(f.get("description") for f in fields.values())
    assert schema["properties"]["trigger"]["description"]
