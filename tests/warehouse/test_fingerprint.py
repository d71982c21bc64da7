"""The keyed snapshot fingerprint and the per-row holdout split, on real PostgreSQL extracts."""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import errno
import hashlib
import os
import stat

import pandas as pd
import pytest

from synthgate.errors import DataValidationError, SpecError
from synthgate.hashing import row_hashes
from synthgate.keys import fingerprint_key, row_hash_key
from synthgate.schema import Column, ColumnKind
from synthgate.settings import Settings
from synthgate.splitting import holdout_mask, split_holdout
from synthgate.warehouse.extract import extract_table
from tests.warehouse.test_postgres import load

pytestmark = pytest.mark.integration

KEY = b"k" * 32
SPLIT_KEY = row_hash_key(KEY)


def test_the_fingerprint_is_keyed_and_holds_no_count(pg_engine, pg_schema, people):
    table = load(pg_engine, pg_schema, "people", people)
    mine, other = extract_table(table, key=KEY), extract_table(table, key=b"another key")
    assert mine.fingerprint.digest == extract_table(table, key=KEY).fingerprint.digest  # an identity for key holders
    assert mine.fingerprint.digest != other.fingerprint.digest  # meaningless without the key
    published = str(mine.fingerprint.as_dict())
    assert "rows" not in mine.fingerprint.as_dict() and str(len(people)) not in published
    # The attack on an unkeyed digest: knowing every row, recompute the hash. Without the key it cannot match.
    unkeyed = pd.util.hash_pandas_object(mine.frame.astype(str), index=False).to_numpy().sum(dtype="uint64")
    guesses = {hashlib.sha256(f"{mine.fingerprint.schema_hash}:{len(people)}:{int(unkeyed)}".encode()).hexdigest()}
    assert mine.fingerprint.digest not in guesses


def test_one_added_row_moves_at_most_that_row_between_train_and_holdout(pg_engine, pg_schema, people):
    before = extract_table(load(pg_engine, pg_schema, "before", people), key=KEY)
    extra = people.head(1).assign(customer_id=10**9, age=77, income=123457.0)
    after = extract_table(load(pg_engine, pg_schema, "after", pd.concat([people, extra], ignore_index=True)), key=KEY)
    train_before, holdout_before = split_holdout(before.frame, before.row_hashes, 0.25, hash_key=SPLIT_KEY)
    train_after, holdout_after = split_holdout(after.frame, after.row_hashes, 0.25, hash_key=SPLIT_KEY)
    ids = lambda frame: set(frame["customer_id"])  # noqa: E731
    assert len(ids(train_after) ^ ids(train_before)) + len(ids(holdout_after) ^ ids(holdout_before)) == 1
    assert 0.2 < len(holdout_before) / len(before.frame) < 0.3
    # a permutation of positions (the old split) would have moved hundreds of rows; a new key draws a new split
    again = extract_table(load(pg_engine, pg_schema, "again", people), key=b"another key")
    train_other, _ = split_holdout(before.frame, again.row_hashes, 0.25, hash_key=row_hash_key(b"another key"))
    assert len(ids(train_other) ^ ids(train_before)) > 100


def test_a_table_of_numbers_only_is_split_by_the_key():
    # pandas keys only text: numbers, instants and booleans hashed alike under every key, so anyone knowing a row of
    # such a table could tell its side; the split hashes each row's hash again under the key
    frame = pd.DataFrame({"x": [float(i) for i in range(2000)], "paid": [i % 3 == 0 for i in range(2000)]})
    columns = [Column("x", ColumnKind.FLOAT, "REAL"), Column("paid", ColumnKind.BOOLEAN, "BOOLEAN")]
    held = {}
    for key in (KEY, b"another key"):
        hash_key = row_hash_key(key)
        held[key] = holdout_mask(frame, row_hashes(frame, columns, hash_key), 0.25, hash_key=hash_key)
    assert 0.2 < held[KEY].mean() < 0.3 and (held[KEY] != held[b"another key"]).mean() > 0.25


def test_the_embedded_key_is_created_once_with_owner_only_permissions(tmp_path):
    settings = Settings(home=tmp_path)
    first = fingerprint_key(settings)
    assert fingerprint_key(settings) == first and len(first) >= 32
    path = settings.secrets_dir / "fingerprint.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    environment = "from-the-environment-" + "e" * 16
    assert fingerprint_key(Settings(home=tmp_path, fingerprint_key=environment)) == environment.encode()


def test_every_process_racing_to_make_the_key_gets_the_same_whole_key(tmp_path):
    # refresh-all's tables start together on a fresh home: a reader once saw the file created empty, before its
    # maker wrote the key (an HMAC under b"" is a public hash of the source)
    for attempt in range(20):
        home = tmp_path / str(attempt)
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            keys = set(pool.map(fingerprint_key, [Settings(home=home)] * 8))
        assert len(keys) == 1 and len(keys.pop()) == 44
        assert [p.name for p in (home / "secrets").iterdir()] == ["fingerprint.key"]  # no draft left behind


def test_a_file_system_without_hard_links_still_gets_one_whole_key(tmp_path, monkeypatch):
    # FAT, gcsfuse and other FUSE mounts refuse os.link: the key is then written in place, and readers wait for it
    def no_links(*args: object) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    home = tmp_path / "fuse"
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        keys = set(pool.map(fingerprint_key, [Settings(home=home)] * 8))
    assert len(keys) == 1 and len(keys.pop()) == 44


@pytest.mark.parametrize("source", ["environment", "file"])
def test_an_empty_or_short_key_is_refused(tmp_path, source):
    if source == "environment":
        settings = Settings(home=tmp_path, fingerprint_key="")
        expected = "the fingerprint key from SYNTHGATE_FINGERPRINT_KEY is shorter than 32 characters"
    else:
        settings = Settings(home=tmp_path)
        settings.secrets_dir.mkdir(parents=True)
        (settings.secrets_dir / "fingerprint.key").write_bytes(b"")  # a run that died while making it
        expected = "fingerprint.key holds fewer than 32 characters: delete it"
    with pytest.raises(SpecError, match=expected):
        fingerprint_key(settings)
    assert fingerprint_key(Settings(home=tmp_path, fingerprint_key="k" * 32)) == b"k" * 32


def test_a_flow_run_s_kubernetes_job_never_makes_a_key_of_its_own(tmp_path, monkeypatch):
    # made in a flow run's pod, the key dies with it: every run would read its source as changed and spend again
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    assert fingerprint_key(Settings(home=tmp_path / "notebook"))  # a pod that is no flow run (a notebook, CI) may
    monkeypatch.setenv("PREFECT__FLOW_RUN_ID", "0b6f3f7e-0000-4000-8000-000000000000")
    with pytest.raises(SpecError, match="no fingerprint key in this flow run's Kubernetes Job: set SYNTHGATE_FINGER"):
        fingerprint_key(Settings(home=tmp_path / "job"))
    assert not (tmp_path / "job" / "secrets").exists()
    job = "from-the-job-" + "j" * 24
    assert fingerprint_key(Settings(home=tmp_path / "job", fingerprint_key=job)) == job.encode()


def test_sentinel_dates_stop_the_extract_naming_the_column(pg_engine, pg_schema):
    frame = pd.DataFrame({"d": [dt.date(2020, 1, 1)] * 5 + [dt.date(9999, 12, 31)], "x": range(6)})
    table = load(pg_engine, pg_schema, "dates", frame)
    with pytest.raises(DataValidationError, match="column 'd' holds dates outside") as error:
        extract_table(table, key=b"k" * 32)
    assert "9999-12-31 sentinels" in str(error.value) and "\n" not in str(error.value)


def test_the_default_row_count_is_the_sources_estimate():
    from synthgate.splitting import source_rows

    assert source_rows(8000, 0.2) == 10_000  # the training split's count, scaled back by the public holdout share
    assert source_rows(8000, None) == 8000  # a separate holdout table: the whole source trained


def test_copies_of_a_repeated_row_fall_on_both_sides(pg_engine, pg_schema):
    # A survey table where rows repeat: 40 distinct rows, 150 copies each. Hashed by content alone, every copy of a
    # row fell on the same side, and synthetic copies of common rows read as copies of training rows.
    frame = pd.DataFrame({"plan": [f"p{i % 40}" for i in range(6000)], "visits": [i % 40 for i in range(6000)]})
    extract = extract_table(load(pg_engine, pg_schema, "survey", frame), key=KEY)
    train, holdout = split_holdout(extract.frame, extract.row_hashes, 0.25, hash_key=SPLIT_KEY)
    per_row = holdout.groupby("plan").size() / frame.groupby("plan").size()
    assert per_row.between(0.1, 0.4).all() and len(per_row) == 40  # every row both trained and held out
    # removing one copy of a row still moves at most that one copy
    fewer = extract_table(load(pg_engine, pg_schema, "survey_less", frame.iloc[1:]), key=KEY)
    train_fewer, holdout_fewer = split_holdout(fewer.frame, fewer.row_hashes, 0.25, hash_key=SPLIT_KEY)
    assert abs(len(train) - len(train_fewer)) + abs(len(holdout) - len(holdout_fewer)) == 1
