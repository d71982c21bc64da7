"""The source table as an MLflow dataset input, with a real (SQLite) MLflow store."""

import json

import mlflow

from synthgate.mlflow_dataset import log_source_dataset
from synthgate.spec import WarehouseTable


def test_the_source_is_logged_as_a_dataset_without_credentials_or_rows(tmp_path):
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    table = WarehouseTable(
        url="postgresql+psycopg2://etl:hunter2@db:5432/prod?sslpassword=x", table="people", schema="crm"
    )
    with mlflow.start_run() as run:
        log_source_dataset(table, "ab" * 32, {"age": "BIGINT", "email": "TEXT"})
    [dataset_input] = mlflow.MlflowClient().get_run(run.info.run_id).inputs.dataset_inputs
    dataset = dataset_input.dataset
    assert (dataset.name, dataset.source_type, dataset.digest) == ("crm.people", "warehouse_table", ("ab" * 32)[:36])
    source = json.loads(dataset.source)
    assert source == {"url": "postgresql+psycopg2://etl@db:5432/prod", "table": "people", "schema": "crm"}
    assert json.loads(dataset.schema) == {
        "columns": [{"name": "age", "type": "BIGINT"}, {"name": "email", "type": "TEXT"}]
    }
    assert "hunter2" not in json.dumps(dataset.to_dictionary()) and dataset_input.tags[0].value == "source"
