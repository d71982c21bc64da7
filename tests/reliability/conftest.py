"""Helpers for the reliability tests: small tables in real PostgreSQL and the plain-Python core end to end."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa
import yaml

from synthgate.generator import DPSynthesizer
from synthgate.profiling import effective_policies, propose
from synthgate.spec import TableSpec, WarehouseTable, spec_from_dict
from synthgate.validation import build_synthetic_suite, validate, validate_source
from synthgate.warehouse import governance
from synthgate.warehouse.extract import Extract, extract_table
from synthgate.warehouse.publish import Published, publish
from tests.conftest import PG_URL

#: Small and fast: a few hundred rows, two epochs, a generous budget.
FAST_TRAINING = {"epochs": 2, "seed": 0, "device": "cpu", "hidden_dim": 32, "embedding_dim": 8}


def spec_dict(schema: str, table: str = "src", target: str = "src_synthetic", **overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": "rel",
        "source": {"url": PG_URL, "table": table, "schema": schema},
        "target": {"url": PG_URL, "table": target, "schema": schema},
        "privacy": {"epsilon": 8.0, "delta": 1e-5},
        "training": dict(FAST_TRAINING),
        # every gate open: these tests are about input handling, with two-epoch training on small tables, where the
        # privacy estimates move with the fresh DP noise of each run (the gates have tests of their own)
        "gates": {
            "min_quality": 0.0,
            "min_column_shapes": 0.0,
            "min_column_pair_trends": 0.0,
            "min_tstr_auc": 0.0,
            "max_utility_gap": 1.0,
            "max_dcr_share": 1.0,
            "max_tvd_1way_excess": 1.0,
            "max_tvd_2way_excess": 1.0,
            "max_tvd_3way_excess": 1.0,
            "max_inference_risk": 1.0,
            "max_singling_out_risk": 1.0,
            "max_linkability_risk": 1.0,
            "max_mia_auc": 1.0,
            "min_nndr_ratio": 0.0,
            "max_exact_copy_excess": 1.0,
        },
    }
    spec.update(overrides)
    return spec


def write_spec(folder: Path, data: dict[str, Any], name: str = "spec.yaml") -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return path


def governed(pg_engine: sa.Engine, schema: str) -> sa.Engine:
    return pg_engine.execution_options(schema_translate_map={None: schema})


def tables_in(pg_engine: sa.Engine, schema: str) -> set[str]:
    """Tables and views (a published name is a view over its current version)."""
    inspector = sa.inspect(pg_engine)
    return set(inspector.get_table_names(schema=schema)) | set(inspector.get_view_names(schema=schema))


@dataclass
class CoreRun:
    extract: Extract
    synthesizer: DPSynthesizer
    synthetic: pd.DataFrame
    published: Published


def core_refresh(spec: TableSpec, expectations_dir: Path, rows: int = 200) -> CoreRun:
    """The refresh without the orchestrator.

    Extract, profile, validate, train, sample, check the synthetic suite, publish.
    """
    extract = extract_table(spec.source, spec.chunk_size, policies=spec.columns)
    policies = effective_policies(propose(spec, extract.frame, extract.columns))
    validate_source(expectations_dir, spec, extract.frame, extract.columns, policies)
    synthesizer = DPSynthesizer(extract.columns, policies, spec.privacy, spec.training, spec.target_column)
    synthesizer.fit(extract.frame)
    synthetic = synthesizer.sample(rows)
    outcome = validate(synthetic, build_synthetic_suite(spec, extract.columns, policies, rows=len(synthetic)))
    assert outcome.success, outcome.failed

    def record(conn: sa.Connection, version: int) -> None:
        governance.catalog_row(
            conn,
            run_id="r" * 32,
            spec_name=spec.name,
            published_table=spec.target.table,
            rows=len(synthetic),
            source_table=spec.source.table,
            source_fingerprint=extract.fingerprint.digest,
            epsilon=1.0,
            delta=spec.privacy.delta,
            gates={},
            scores={},
            mlflow_run_id="r" * 32,
            model_name="m",
            model_version="1",
            trigger="test",
            version=version,
        )

    published = publish(spec.target, synthetic, extract.columns, "r" * 32, record)
    return CoreRun(extract, synthesizer, synthetic, published)


def load_frame(pg_engine: sa.Engine, schema: str, name: str, frame: pd.DataFrame, **kwargs: Any) -> WarehouseTable:
    frame.to_sql(name, pg_engine, schema=schema, index=False, **kwargs)
    return WarehouseTable(url=PG_URL, table=name, schema=schema)


def make_spec(schema: str, **overrides: Any) -> TableSpec:
    return spec_from_dict(spec_dict(schema, **overrides))


@pytest.fixture
def expectations(tmp_path: Path) -> Path:
    return tmp_path / "expectations"
