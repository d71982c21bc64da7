"""Column policies: recorded in the spec, else decided from each column's name and SQL type.

Two ways to decide a column's policy (keep, fake or drop) when the spec records none:

* :func:`policies_from_schema` — what every refresh uses. It looks at the column's *name* and SQL *type* only and
  reads no row, so it spends nothing outside the privacy budget and cannot change from one refresh to the next.
* :func:`propose` — SDV's metadata detection on a sample of real rows. It reads real values outside the privacy
  budget, so it runs only when a person asks for it (``synthgate profile SPEC``), and ``--write`` records the accepted
  proposals in the spec (:func:`record_policies`): from then on the spec decides. Only the detected *sdtypes* and key
  flags are used; SDV's metadata also holds real minima, maxima and category lists, which are never logged, stored or
  used as a domain.

Name rules (:func:`rule_for`): the name is split into lower-case words (snake_case, camelCase, digits), and

* identifiers — ``id``, a name ending in ``id`` (``customer_id``, ``customerId``), ``uuid`` or ``guid``, with an
  integer or string type, and any column of SQL type ``UUID``/``UNIQUEIDENTIFIER`` — are faked: ``id`` for
  integers, ``uuid`` otherwise;
* string columns whose name *ends* in a personal-data word are faked: ``email``/``e_mail``(``_address``) -> email;
  ``first_name``/``firstname``/``given_name``/``forename``/``middle_name`` -> first_name;
  ``last_name``/``surname``/``family_name``/``maiden_name`` -> last_name; ``name``/``full_name`` on its own, or
  ``<person>_name`` for a word naming a person (``customer_name``, ``user_name``, ``contact_name``, ``patient_name``,
  ... see ``_PERSON_WORDS``) -> name, while ``plan_name``, ``product_name``, ``company_name`` are kept;
  ``phone``/``phone_number``/``mobile``/``telephone``/``tel`` -> phone_number; ``address``/``street``/
  ``street_address``/``address_line_1`` (not ``ip_address``, ``mac_address``) -> address;
  ``ssn``/``social_security_number`` -> ssn;
* every other column is kept (learned under differential privacy), as is the spec's ``target_column``.

A column whose personal data lies in a non-string type (a phone number stored as BIGINT) is kept: a fake string
cannot be published into it; record ``policy: drop`` in the spec if it must not be learned.
"""

from __future__ import annotations

import itertools
import logging
import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from synthgate.schema import Column, ColumnKind
from synthgate.spec import KEY_KINDS, ColumnPolicy, TableSpec

log = logging.getLogger(__name__)

_PII_FAKES = {
    "email": "email",
    "first_name": "first_name",
    "last_name": "last_name",
    "name": "name",
    "phone_number": "phone_number",
    "address": "address",
    "street_address": "address",
    "ssn": "ssn",
}
_PROFILE_ROWS = 5_000

DECLARED = "declared in the spec"
FROM_SCHEMA = "no policy recorded in the spec: decided from its name and type"

_KIND_SDTYPE = {
    ColumnKind.INTEGER: "numerical",
    ColumnKind.FLOAT: "numerical",
    ColumnKind.DATETIME: "datetime",
    ColumnKind.BOOLEAN: "boolean",
    ColumnKind.CATEGORICAL: "categorical",
}
# Words that name a person: `<word>_name` is that person's name (faked); any other `<word>_name` is kept.
_PERSON_WORDS = frozenset(
    {
        "customer",
        "client",
        "user",
        "person",
        "contact",
        "patient",
        "member",
        "employee",
        "owner",
        "holder",
        "cardholder",
        "policyholder",
        "buyer",
        "seller",
        "recipient",
        "sender",
        "student",
        "applicant",
        "guest",
        "passenger",
        "driver",
        "subscriber",
        "beneficiary",
        "guardian",
        "parent",
        "spouse",
        "mother",
        "father",
        "child",
        "tenant",
        "landlord",
        "resident",
        "donor",
        "voter",
        "candidate",
        "author",
        "signer",
        "doctor",
        "physician",
        "nurse",
        "manager",
        "supervisor",
        "teacher",
        "traveler",
        "traveller",
        "consignee",
        "addressee",
        "payee",
        "payer",
        "insured",
        "representative",
        "rep",
        "agent",
        "partner",
        "emergency",
    }
)
_COMPOUNDS = {
    "firstname": ("first", "name"),
    "lastname": ("last", "name"),
    "givenname": ("given", "name"),
    "familyname": ("family", "name"),
    "fullname": ("full", "name"),
    "middlename": ("middle", "name"),
    "maidenname": ("maiden", "name"),
    "phonenumber": ("phone", "number"),
    "emailaddress": ("email", "address"),
    "streetaddress": ("street", "address"),
    "mobilephone": ("mobile", "phone"),
    "cellphone": ("cell", "phone"),
}
# `<word>_address` that is not a postal address.
_NOT_POSTAL = frozenset(
    {
        "ip",
        "ipv4",
        "ipv6",
        "mac",
        "email",
        "mail",
        "web",
        "url",
        "wallet",
        "server",
        "host",
        "network",
        "memory",
        "bitcoin",
        "btc",
        "eth",
    }
)
_UUID_SQL_TYPES = ("UUID", "UNIQUEIDENTIFIER")
# A name ending in one of these words names a key (`case_id`, `order_no`, `claimNumber`, `account_key`); `num` is
# left out (`education_num` is a figure), `code` too (`zip_code` is a category).
_KEY_WORDS = ("id", "uuid", "guid", "uid", "key", "no", "nr", "number", "ref")


@dataclass(frozen=True)
class ColumnProfile:
    """One column's proposed policy: its kind and detected sdtype, whether it holds personal data, and why."""

    name: str
    kind: ColumnKind
    sdtype: str
    pii: bool
    proposed: ColumnPolicy
    reason: str
    declared: bool = False  # the policy was recorded in the spec (not decided by a name rule or by SDV)


def name_words(name: str) -> list[str]:
    """``customerEmail_address2`` -> ``["customer", "email", "address"]``: lower-case words, trailing numbers
    dropped."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)
    spaced = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1 \2", spaced)
    spaced = re.sub(r"([A-Za-z])([0-9])|([0-9])([A-Za-z])", r"\1\3 \2\4", spaced)
    words: list[str] = []
    for word in re.split(r"[^0-9a-z]+", spaced.lower()):
        if word == "mail" and words and words[-1] == "e":
            words[-1] = "email"
        elif word:
            words.extend(_COMPOUNDS.get(word, (word,)))
    while words and words[-1].isdigit():
        words.pop()
    return words


def _personal_kind(words: list[str]) -> str | None:
    """The fake kind a personal-data name ends in, if any."""
    if not words:
        return None
    last, before = words[-1], words[:-1]
    prev = before[-1] if before else None
    if last == "email" or (last == "address" and prev == "email"):
        return "email"
    if last == "ssn" or words[-3:] in (["social", "security", "number"], ["social", "security", "no"]):
        return "ssn"
    if last == "surname" or (last == "name" and prev in ("last", "family", "maiden", "sur")):
        return "last_name"
    if last == "forename" or (last == "name" and prev in ("first", "given", "middle")):
        return "first_name"
    if last == "name" and (not before or prev == "full" or prev in _PERSON_WORDS):
        return "name"
    phone = words[:-1] if last in ("number", "no", "nr", "num") and before else words
    if phone and phone[-1] in ("phone", "telephone", "mobile", "tel"):
        return "phone_number"
    postal = words[:-1] if last == "line" and before else words
    if postal and postal[-1] in ("street", "addr"):
        return "address"
    if postal and postal[-1] == "address" and (len(postal) == 1 or postal[-2] not in _NOT_POSTAL):
        return "address"
    return None


def rule_for(column: Column) -> tuple[ColumnPolicy, str, bool, str]:
    """(policy, sdtype, pii, why) from the column's name and SQL type alone: no row is read."""
    words = name_words(column.name)
    id_fake = {ColumnKind.INTEGER: "id", ColumnKind.CATEGORICAL: "uuid"}.get(column.kind)
    uuid_type = any(t in column.sql_type.upper() for t in _UUID_SQL_TYPES)
    personal = _personal_kind(words) if column.kind is ColumnKind.CATEGORICAL else None
    if id_fake and not personal and (uuid_type or (words and words[-1] in _KEY_WORDS)):
        return ColumnPolicy(policy="fake", fake=id_fake), "id", False, "identifier: regenerated, never learned"
    if personal:
        return ColumnPolicy(policy="fake", fake=personal), personal, True, f"personal data ({personal}): faked"
    return ColumnPolicy(policy="keep"), _KIND_SDTYPE[column.kind], False, "no identifier or personal-data name: kept"


def unit_policy(column: Column) -> ColumnPolicy:
    """The privacy unit's policy when the spec declares none: a fake key (integers as ids, others as UUIDs)."""
    return ColumnPolicy(policy="fake", fake="id" if column.kind is ColumnKind.INTEGER else "uuid")


#: A column looks like a person's key when its name says identifier and a value is held by this many rows on average.
REPEATING_KEY_ROWS = 1.5


def repeating_person_keys(spec: TableSpec, frame: pd.DataFrame, profiles: list[ColumnProfile]) -> list[str]:
    """Columns that look like the key of a person who owns several rows (an identifier whose values repeat), when the
    spec names no privacy unit: for ``synthgate profile``'s warning (epsilon then protects a row, not a person).
    Reads real values outside the budget, like the rest of ``profile``; returns names only."""
    if spec.privacy.unit is not None:
        return []
    keys = []
    for p in profiles:
        words = name_words(p.name)
        identifier = p.sdtype == "id" or p.proposed.fake in KEY_KINDS or bool(words and words[-1] in _KEY_WORDS)
        values = frame[p.name].dropna() if p.name in frame.columns else pd.Series(dtype=object)
        if identifier and len(values) and len(values) >= REPEATING_KEY_ROWS * values.nunique():
            keys.append(p.name)
    return keys


def policies_from_schema(spec: TableSpec, columns: list[Column]) -> list[ColumnProfile]:
    """The effective policy per column, for a refresh: the spec's where it records one, else the name/type rule.

    Reads no row (it is not even given the data): nothing is spent outside the privacy budget, and the policies, hence
    the number of DP releases, depend only on the spec and the table's schema.
    """
    profiles = []
    for c in columns:
        declared = spec.policy(c.name)
        if declared.policy is not None:
            pii = declared.fake is not None and declared.fake not in ("id", "uuid")
            sdtype = "id" if declared.fake in ("id", "uuid") else declared.fake or _KIND_SDTYPE[c.kind]
            profiles.append(ColumnProfile(c.name, c.kind, sdtype, pii, declared, DECLARED, declared=True))
            continue
        if c.name == spec.target_column:
            policy, sdtype, pii, why = (
                ColumnPolicy(policy="keep"),
                _KIND_SDTYPE[c.kind],
                False,
                "the target column: kept",
            )
        elif c.name == spec.privacy.unit:
            policy, sdtype, pii, why = unit_policy(c), "id", False, "the privacy unit: a fake key"
        else:
            policy, sdtype, pii, why = rule_for(c)
        if policy.policy == "keep":  # keep a declared public domain (categories, min, max)
            policy = declared.model_copy(update={"policy": "keep"})
        profiles.append(ColumnProfile(c.name, c.kind, sdtype, pii, policy, f"{FROM_SCHEMA} ({why})"))
    return profiles


def detect_sdtypes(frame: pd.DataFrame) -> tuple[dict[str, tuple[str, bool]], str | None]:
    """(sdtype, pii) per column and the detected primary key, from a sample of the rows."""
    from sdv.metadata import Metadata

    sample = frame.sample(min(len(frame), _PROFILE_ROWS), random_state=0) if len(frame) else frame
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.getLogger("sdv").setLevel(logging.ERROR)
        metadata = Metadata.detect_from_dataframes({"table": sample.reset_index(drop=True)}, infer_keys="primary_only")
    table = metadata.to_dict()["tables"]["table"]
    detected = {
        name: (str(info.get("sdtype", "unknown")), bool(info.get("pii", False)))
        for name, info in table["columns"].items()
    }
    return detected, table.get("primary_key")


def propose(spec: TableSpec, frame: pd.DataFrame, columns: list[Column]) -> list[ColumnProfile]:
    """Proposals from SDV's detection on a sample of real rows, for ``synthgate profile`` only (a person's decision).

    This reads real values outside the privacy budget: a refresh never calls it (it uses :func:`policies_from_schema`).
    """
    detected, primary_key = detect_sdtypes(frame)
    profiles = []
    for c in columns:
        sdtype, pii = detected.get(c.name, ("unknown", False))
        declared = spec.policy(c.name)
        fake_id = "id" if c.kind is ColumnKind.INTEGER else "uuid"
        if declared.policy is not None:
            profiles.append(ColumnProfile(c.name, c.kind, sdtype, pii, declared, DECLARED, declared=True))
            continue
        if c.name == spec.target_column:
            proposed, reason = declared.model_copy(update={"policy": "keep"}), f"the target column ({sdtype}): kept"
        elif c.name == spec.privacy.unit:
            proposed, reason = unit_policy(c), "the privacy unit: a fake key whose rows per unit follow a DP histogram"
        elif sdtype == "id" or c.name == primary_key:
            proposed, reason = ColumnPolicy(policy="fake", fake=fake_id), "identifier: regenerated, never learned"
        elif pii and sdtype in _PII_FAKES:
            proposed, reason = ColumnPolicy(policy="fake", fake=_PII_FAKES[sdtype]), f"personal data ({sdtype}): faked"
        elif pii and c.name in spec.key_columns:  # a key must be published: regenerate it rather than drop it
            proposed, reason = (
                ColumnPolicy(policy="fake", fake=fake_id),
                f"key with personal data ({sdtype}): regenerated",
            )
        elif pii:
            proposed, reason = ColumnPolicy(policy="drop"), f"personal data ({sdtype}) with no faker: dropped"
        else:
            proposed, reason = declared.model_copy(update={"policy": "keep"}), f"detected {sdtype}"
            by_name, _, _, why = rule_for(c)
            if by_name.policy == "fake":  # never weaker than what a refresh would decide from the name
                proposed, reason = by_name, f"detected {sdtype}, but by its name and type: {why}"
        profiles.append(ColumnProfile(c.name, c.kind, sdtype, pii, proposed, reason))
    return profiles


def effective_policies(profiles: list[ColumnProfile]) -> dict[str, ColumnPolicy]:
    """Each column's policy as decided (the spec's, else the proposal): what the generator and the suites use."""
    return {p.name: p.proposed for p in profiles}


def undeclared_decisions(profiles: list[ColumnProfile], *, shown: int = 12) -> str:
    """The policies decided for columns the spec does not declare, grouped by decision (``keep: age, income; fake
    id: customer_id``), at most ``shown`` names a group (a 500-column table's log line stays a line); empty when
    the spec declares every column."""
    groups: dict[str, list[str]] = {}
    for p in profiles:
        if not p.declared:
            groups.setdefault(f"{p.proposed.policy}{' ' + p.proposed.fake if p.proposed.fake else ''}", []).append(
                p.name
            )
    return "; ".join(
        f"{decision}: {', '.join(names[:shown])}" + (f" and {len(names) - shown} more" if len(names) > shown else "")
        for decision, names in groups.items()
    )


# -- recording accepted proposals in the spec file --------------------------------------------------------------------

# A new `columns:` section goes before the first of these keys the file has (else at the end).
_COLUMNS_BEFORE = ("privacy", "training", "gates", "rows", "chunk_size", "publishing", "schedule")
_CHILD_COLUMNS_BEFORE = ("target_column", "order_by")  # in a child table's mapping


def record_policies(
    path: str | Path, profiles: Iterable[ColumnProfile], *, child: int | None = None
) -> dict[str, ColumnPolicy]:
    """Write each undeclared column's proposed policy (and fake kind) into the spec file (into ``children[child]``'s
    ``columns:`` for a child table); return what was written.

    The raw YAML text is edited in round-trip mode, so ``${ENV}``/``${secret:BLOCK}`` placeholders, comments and key
    order stay as written. Only ``policy`` and ``fake`` are written: never anything seen in the data (no minima,
    maxima or category lists). Columns that already have a ``policy`` in the file are left alone. The caller validates
    the result (see :func:`write_policies`).
    """
    from io import StringIO

    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap

    path = Path(path)
    text = path.read_text()
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap long lines (URLs)
    yaml.indent(**_guess_indent(text))
    document = yaml.load(text)
    if not isinstance(document, CommentedMap):
        raise TypeError("a table spec is a YAML mapping")
    data = document if child is None else document["children"][child]
    if not isinstance(data, CommentedMap):
        raise TypeError(f"children[{child}] is not a mapping")
    columns = data.get("columns")
    if columns is not None and not isinstance(columns, CommentedMap):
        raise TypeError("'columns' is not a mapping")
    if columns is not None and columns.anchor.value is not None:  # shared with another table through a YAML alias
        raise TypeError(f"'columns' is a YAML anchor (&{columns.anchor.value}): write each table's columns out")
    added = CommentedMap()
    written: dict[str, ColumnPolicy] = {}
    for p in profiles:
        entry = columns.get(p.name) if columns is not None else None
        if p.declared or (isinstance(entry, dict) and entry.get("policy") is not None):
            continue
        if entry is not None and not isinstance(entry, CommentedMap):
            raise TypeError(f"columns.{p.name} is not a mapping")
        recorded = [("policy", p.proposed.policy)] + ([("fake", p.proposed.fake)] if p.proposed.fake else [])
        if entry is None:
            added[_yaml_key(p.name)] = _flow_map(recorded)
        else:  # a declared domain without a policy: add the policy in front, keep the rest
            for i, (key, value) in enumerate(recorded):
                entry.insert(i, key, value)
        written[str(p.name)] = ColumnPolicy(policy=p.proposed.policy, fake=p.proposed.fake)
    if not written:
        return written
    if added and columns is None and "columns" in data:  # an empty `columns:` line
        data["columns"] = added
    elif added and columns is None:
        keys = list(data)
        before = _COLUMNS_BEFORE if child is None else _CHILD_COLUMNS_BEFORE
        position = next((keys.index(k) for k in before if k in data), len(keys))
        data.insert(position, "columns", added)
        if position:  # comment lines that precede the next key stay in front of it
            _move_trailing_comment(data, keys[position - 1], added)
    elif added and columns is not None:  # columns is None was handled above: the narrowing is for mypy
        last = list(columns)[-1] if columns else None
        for key, value in added.items():
            columns[key] = value
        if last is not None and not columns.fa.flow_style():
            _move_trailing_comment(columns, last, columns)
    out = StringIO()
    yaml.dump(document, out)
    path.write_text(out.getvalue())
    return written


def write_policies(
    path: str | Path, profiles: list[ColumnProfile], *, child: int | None = None
) -> dict[str, ColumnPolicy]:
    """:func:`record_policies`, then load the spec again; on any error the file is left as it was."""
    from synthgate.errors import SpecError
    from synthgate.spec import load_spec

    path = Path(path)
    before = path.read_text()
    try:
        written = record_policies(path, profiles, child=child)
        if written:
            load_spec(path)
    except Exception as exc:  # noqa: BLE001 - a parse or validation error of the edited file: nothing is recorded
        path.write_text(before)
        raise SpecError(f"{path}: the proposals were not recorded: {exc}") from None
    except BaseException:
        path.write_text(before)
        raise
    return written


def _guess_indent(text: str) -> dict[str, int]:
    """Ruamel's indent settings as the file has them: mapping indent, and where a block sequence's dash sits."""
    mapping, offset = None, None
    lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    for parent, line in itertools.pairwise(lines):
        if not re.sub(r"\s+#.*$", "", parent).rstrip().endswith(":"):
            continue
        step = (len(line) - len(line.lstrip())) - (len(parent) - len(parent.lstrip()))
        if line.lstrip().startswith("- ") and offset is None and step >= 0:
            offset = step
        elif not line.lstrip().startswith("- ") and mapping is None and step > 0:
            mapping = step
    mapping = mapping or 2
    offset = offset if offset is not None else 0
    return {"mapping": mapping, "sequence": offset + 2, "offset": offset}


def _trailing(node: Any, key: Any) -> tuple[Any, Any, int]:
    """The innermost (container, key, slot) after which a block node's trailing comment is stored."""
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    value = node[key]
    if isinstance(value, (CommentedMap, CommentedSeq)) and len(value) and not value.fa.flow_style():
        return _trailing(value, list(value)[-1] if isinstance(value, CommentedMap) else len(value) - 1)
    return node, key, 0 if isinstance(node, CommentedSeq) else 2


def _move_trailing_comment(node: Any, key: Any, new_owner: Any) -> None:
    """Move the comment lines after ``node[key]`` (not its end-of-line comment) to after ``new_owner``'s last entry."""
    from ruamel.yaml.tokens import CommentToken

    container, inner, slot = _trailing(node, key)
    slots = container.ca.items.get(inner)
    token = slots[slot] if slots else None
    if token is None or "\n" not in token.value:
        return
    head, tail = token.value.split("\n", 1)
    if not tail.strip():
        return
    token.value = head + "\n"
    last = list(new_owner)[-1]
    new_owner.ca.items[last] = [None, None, CommentToken("\n" + tail, token.start_mark, None), None]


def _flow_map(items: list[tuple[str, Any]]) -> Any:
    from ruamel.yaml.comments import CommentedMap

    mapping = CommentedMap(items)
    mapping.fa.set_flow_style()
    return mapping


def _yaml_key(name: str) -> Any:
    """A column name as a key PyYAML (YAML 1.1, used by load_spec) reads back as that string (`on`, `yes`, `1`:
    quoted)."""
    import yaml as pyyaml
    from ruamel.yaml.scalarstring import DoubleQuotedScalarString

    name = str(name)  # reflected names are str subclasses (sqlalchemy's quoted_name) the dumper cannot represent
    try:
        plain = pyyaml.safe_load(f"{name}: 0") == {name: 0}
    except pyyaml.YAMLError:
        plain = False
    return name if plain else DoubleQuotedScalarString(name)
