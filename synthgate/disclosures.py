"""What a refresh lets out about the real data outside the privacy accountant: the disclosed exceptions.

Everything else that leaves a run (published rows, the model, released bins and categories, the noisy row
count, epsilon) is a DP output composed by the accountant. README and every report print this list word for
word; ``tests/reliability/test_leak_diff.py`` fails on any other difference a canary row makes.
"""

from __future__ import annotations

#: The disclosed exceptions, each one line.
DISCLOSED_EXCEPTIONS: tuple[str, ...] = (
    "Evaluation aggregates: fidelity, utility, privacy and validity scores computed after training from training "
    "and holdout rows (per column and per pair in MLflow and the report; overall scores in the catalog), for linked "
    "tables the relation scores (children per parent, shares of child rows naming no parent or none, parent-child "
    "trends, siblings' agreement), and the gate verdicts.",
    "The report's real-data side: shares of real rows over the generator's DP-released bins and categories (rows "
    "beyond the released range as one share per side, shown from 1%), and one correlation per pair of columns.",
    "Source validation verdicts: pass or fail of each expectation in the source suite, and the extract's refusal of "
    "a column holding values its SQL type cannot hold as learned (dates out of range, UTC offsets without a time "
    "zone, text that reads as no date, integers past a signed BIGINT) (no counts, no values).",
    "Whether the source changed since the published version: the keyed snapshot fingerprint (HMAC-SHA256 under a "
    "secret key), and a refresh of an unchanged snapshot that re-samples instead of training says so.",
    "Column policies a person recorded in the spec after `synthgate profile` (a decision taken once, from a sample "
    "read outside the budget).",
    "The source's schema (column names and SQL types) and stage wall times.",
)
