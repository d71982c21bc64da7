"""The run report: one self-contained HTML file (plots inlined as PNG), aggregates only.

Real data appears only as histograms over the generator's DP-released bins and as bar charts
over its DP-released categories: no real row, no real extreme value, no category that the DP
selection did not release. Rows beyond the released range are one share per side of it (shown
only when at least 1% of the rows, else clipped into the edge bins), labelled by the DP-released edge.

The header answers a data steward first: which table, which version, how many rows, when, the verdict
in one sentence, epsilon of this run and of the table against its cap, the code version, and how to open
the MLflow run (a link on a tracking server, else the ``mlflow ui`` command and the page to open).
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy.stats import rankdata

from synthgate.columns import to_numeric
from synthgate.disclosures import DISCLOSED_EXCEPTIONS
from synthgate.evaluation.attacks import AttackRisk
from synthgate.evaluation.relations import Relations
from synthgate.evaluation.scorecard import Evaluation
from synthgate.gates import GateVerdict, Scores
from synthgate.generator.codecs import CategoricalCodec, NumericCodec
from synthgate.generator.synthesizer import DPSynthesizer
from synthgate.generator.units import protected_unit
from synthgate.schema import Column, ColumnKind
from synthgate.tracking import RunLink

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


@dataclass(frozen=True)
class RunFacts:
    """What the report's header states besides the scores: known before publishing, none of it real data."""

    table: str  # the published (qualified) name
    source_table: str
    rows: int  # synthetic rows sampled by this run
    epsilon_spent: float  # by this run (0 when it re-sampled an earlier model)
    started_at: datetime | None = None
    trigger: str | None = None
    next_version: int | None = None  # the number a publish of this run takes
    current_version: int | None = None  # the version the name points at now (None: never published)
    epsilon_total: float | None = None  # the table's ledger total, this run included
    epsilon_cap: float | None = None
    resampled_from: str | None = None
    git_commit: str | None = None
    git_dirty: bool | None = None


@dataclass(frozen=True)
class ReportContext:
    """Everything the report shows of one run besides the plots and the sample: scores, verdicts, budget, facts."""

    spec_name: str
    run_id: str
    epsilon: float
    delta: float
    accounting: str
    scores: Scores
    verdicts: list[GateVerdict]
    stage_seconds: dict[str, float]
    mlflow_link: str  # tracking.run_url(): a URL on a server, else the `mlflow ui` command and the page to open
    evaluation: Evaluation | None = None
    keys: tuple[str, ...] = ()
    facts: RunFacts | None = None
    protects: str = protected_unit(None)  # what epsilon protects (synthgate.generator.units.protected_unit)
    relations: Relations | None = None  # a linked refresh's child table: its relations with the parent


def refresh_context(outcome: Any, state: dict[str, Any], run: dict[str, Any]) -> ReportContext:
    """The report of a refresh (a :class:`synthgate.outcome.RefreshResult` with its scores and verdicts), with
    :func:`synthgate.audit.table_state` and :func:`synthgate.tracking.active_run_facts`."""
    from synthgate.tracking import run_url

    spec, privacy = outcome.spec, outcome.privacy
    return ReportContext(
        spec_name=spec.name,
        run_id=outcome.run_id,
        epsilon=privacy.epsilon,
        delta=privacy.delta,
        accounting=privacy.accounting,
        scores=outcome.scores,
        verdicts=outcome.verdicts,
        stage_seconds=outcome.stage_seconds,
        mlflow_link=run_url(outcome.tracking_uri, outcome.run_id),
        evaluation=outcome.evaluation,
        keys=tuple(spec.key_columns),
        facts=run_facts(spec, outcome.rows, privacy, state, run),
        protects=privacy.protects,
        relations=outcome.relations,
    )


def check_writable(folder: Path) -> None:
    """Create ``folder`` and write a probe file in it, or raise :class:`OutputError` naming the folder and the cause."""
    import os
    import tempfile

    from synthgate.errors import OutputError

    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-check-") as probe:
            probe.write(b"synthgate")
            probe.flush()
            os.fsync(probe.fileno())
    except OSError as exc:
        raise OutputError(
            f"cannot write reports to {folder}: {exc.strerror or type(exc).__name__}. Check the permissions and free "
            "space of SYNTHGATE_HOME; nothing was read or trained"
        ) from None


def run_facts(spec: Any, rows: int, privacy: Any, state: dict[str, Any], run: dict[str, Any]) -> RunFacts:
    """The header's facts from the spec, this run's privacy figures, :func:`synthgate.audit.table_state` and
    :func:`synthgate.tracking.active_run_facts`."""
    from synthgate.warehouse.engine import qualified

    tags = run.get("tags", {})
    return RunFacts(
        table=qualified(spec.target),
        source_table=qualified(spec.source),
        rows=rows,
        epsilon_spent=privacy.spent,
        started_at=run.get("started_at"),
        trigger=tags.get("synthgate.trigger"),
        next_version=state.get("next_version"),
        current_version=state.get("current_version"),
        epsilon_total=state.get("epsilon_total"),
        epsilon_cap=state.get("cap"),
        resampled_from=privacy.resampled_from,
        git_commit=tags.get("synthgate.git_commit"),
        git_dirty={"true": True, "false": False}.get(tags.get("synthgate.git_dirty", "")),
    )


#: Each gate as a data steward reads it: a plain name and one line on what it checks and which way is good.
GATE_EXPLANATIONS: dict[str, tuple[str, str]] = {
    "quality": (
        "Overall likeness",
        "How closely the synthetic table resembles the real one overall (SDMetrics quality, "
        "the mean of the next two); 1 is identical.",
    ),
    "column_shapes": (
        "Column distributions",
        "How closely each column's values are spread like the real column's; 1 is identical.",
    ),
    "column_pair_trends": (
        "Relationships between columns",
        "How well correlations and co-occurrences between pairs of columns are kept; 1 is identical.",
    ),
    "tvd_1way_excess": (
        "Single columns, beyond noise",
        "How much more single columns differ from the real data than a "
        "fresh real sample of the same size does; 0 is as close as real data gets.",
    ),
    "tvd_2way_excess": ("Pairs of columns, beyond noise", "The same for combinations of two columns."),
    "tvd_3way_excess": (
        "Triples of columns, beyond noise",
        "The same for combinations of three columns (a sample of them).",
    ),
    "tstr": (
        "Usefulness for prediction",
        "A model trained on synthetic rows predicts the target column of held-out real rows this well.",
    ),
    "utility_gap": (
        "Prediction loss",
        "How much worse that model predicts than one trained on the real rows; 0 is no loss.",
    ),
    "dcr_share": (
        "Closeness to training rows",
        "Share of synthetic rows nearer to a training row than to a held-out real "
        "row; 0.5 means the training rows were not memorised.",
    ),
    "nndr_ratio": (
        "Distance profile",
        "Whether synthetic rows sit as distinctly near training rows as near held-out rows "
        "(nearest-neighbour distance ratio); 1 means no difference.",
    ),
    "exact_copy_excess": (
        "Copied rows",
        "Share of synthetic rows identical to a training row, beyond what chance gives "
        "between real rows; 0 is no copying.",
    ),
    "mia_auc": (
        "Membership guessing",
        "How well an attacker tells from distances whether a person was in the training data; 0.5 is a coin toss.",
    ),
    "singling_out_risk": (
        "Singling someone out",
        "How often the synthetic table lets an attacker isolate one real person, "
        "beyond a control group of people it never saw; 0 is no risk.",
    ),
    "linkability_risk": (
        "Linking records",
        "How often it lets an attacker link two parts of one real person's record, "
        "beyond the control group; 0 is no risk.",
    ),
    "inference_risk": (
        "Guessing a hidden column",
        "How often it lets an attacker infer a person's column from the others, "
        "beyond the control group (worst column); 0 is no risk.",
    ),
    "duplicate_keys": (
        "Unique keys",
        "Share of synthetic rows whose declared key repeats another row's; 0 keeps the key a key.",
    ),
    "synthetic_suite": (
        "Data-quality rules",
        "The synthetic table passes the data-quality checks (Great Expectations) built for the real table.",
    ),
}


def gate_title(name: str) -> str:
    """A gate's title for people (its metric name when it has no explanation)."""
    return GATE_EXPLANATIONS.get(name, (name, ""))[0]


def gate_explanation(name: str) -> str:
    """What a gate checks, in a sentence or two for people (empty when it has no explanation)."""
    return GATE_EXPLANATIONS.get(name, (name, ""))[1]


#: Longest label a plot shows: longer category values and column names are cut (a 100 kB label exhausts memory).
MAX_LABEL = 40


def plot_label(value: object, limit: int = MAX_LABEL) -> str:
    """A category or column name as a plot label: one line, at most ``limit`` characters, no mathtext (``$``)."""
    text = " ".join(str(value).split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text.replace("$", r"\$")


def _png(fig: Figure) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode()


#: A DP bin is drawn as a spike (a bar of its own beside the histogram) when it is at most this share of the column's
#: range wide and holds at least SPIKE_SHARE of the real or the synthetic rows: on a shared axis it would flatten the
#: rest of the histogram to nothing (a column that is mostly 0, or mostly 40).
SPIKE_WIDTH = 0.02
SPIKE_SHARE = 0.2
#: Rows beyond the DP-released range get a bar of their own ("> 5000": rows the generator cannot produce) only when
#: they are at least this share of the real or the synthetic rows.
OUTSIDE_SHARE = 0.01
_SIDES = (("real", "#4c72b0"), ("synthetic", "#dd8452"))


def _format_value(value: float, column: Column, unit: bool, span: float | None = None) -> str:
    """A DP-released edge or point as a label: a date for a datetime column, an integer where values are whole."""
    if column.kind is ColumnKind.DATETIME:
        stamp = pd.Timestamp(value, unit="s")
        return stamp.strftime("%Y-%m-%d" if span is None or span >= 2 * 86400 else "%Y-%m-%d %H:%M")
    if unit or (column.kind is ColumnKind.INTEGER and float(value).is_integer()):
        return f"{value:.0f}"
    return f"{value:.4g}"


def _date_axis(ax: Axes, span: float) -> None:
    """Epoch seconds on the x axis shown as dates (or date and time for a span under two days)."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    fmt = "%Y-%m-%d" if span >= 2 * 86400 else "%m-%d %H:%M"
    ax.xaxis.set_major_locator(MaxNLocator(5))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: pd.Timestamp(x, unit="s").strftime(fmt)))
    for label in ax.get_xticklabels():
        label.set_rotation(30)
        label.set_horizontalalignment("right")


def _tokens(codec: NumericCodec, column: Column, values: pd.Series) -> np.ndarray:
    """Each row's DP bin (the codec's tokens), with rows beyond the released range as two extra tokens (``n_tokens``
    below, ``n_tokens + 1`` above) instead of clipped into the edge bins."""
    tokens = codec.encode(values)
    numbers = to_numeric(values, column)
    edges = codec.fine_edges[codec.coarse_starts]
    binned = tokens < codec.n_coarse
    tokens = np.where(binned & (numbers < edges[0]), codec.n_tokens, tokens)
    return np.where(binned & (numbers > edges[-1]), codec.n_tokens + 1, tokens)


def _shares(codec: NumericCodec, tokens: list[np.ndarray]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Shares of rows per token. Rows beyond the released range keep a bar of their own only where they are at least
    OUTSIDE_SHARE of a side's rows; fewer (an outlier or two) stay clipped into the edge bins, as the generator
    clips them: no single real row gets a bar."""
    below, above = codec.n_tokens, codec.n_tokens + 1
    shares = [np.bincount(t, minlength=codec.n_tokens + 2) / max(len(t), 1) for t in tokens]
    for token, edge in ((below, 0), (above, codec.n_coarse - 1)):
        if max(s[token] for s in shares) < OUTSIDE_SHARE:
            tokens = [np.where(t == token, edge, t) for t in tokens]
    return [np.bincount(t, minlength=codec.n_tokens + 2) / max(len(t), 1) for t in tokens], tokens


def _spike_tokens(codec: NumericCodec, shares: list[np.ndarray]) -> list[int]:
    """Tokens drawn as bars of their own: point masses, narrow bins holding many rows, NULL, and rows beyond the
    released range."""
    edges = codec.fine_edges[codec.coarse_starts]
    span = float(edges[-1] - edges[0]) or 1.0
    spikes = [
        c
        for c in range(codec.n_coarse)
        if (edges[c + 1] - edges[c]) <= SPIKE_WIDTH * span and max(s[c] for s in shares) >= SPIKE_SHARE
    ]
    if codec.n_coarse == 1:  # the released range is one bin: the bin is the column
        spikes = [0]
    spikes += [codec.n_coarse + i for i in range(len(codec.points))]
    extra = [codec.null_token] if codec.has_nulls else []
    extra += [t for t in (codec.n_tokens, codec.n_tokens + 1) if t < min(len(s) for s in shares)]
    return spikes + [t for t in extra if max(s[t] for s in shares) > 0]


def _spike_label(codec: NumericCodec, column: Column, token: int) -> str:
    edges = codec.fine_edges[codec.coarse_starts]
    span = float(edges[-1] - edges[0])
    if token == codec.null_token:
        return "NULL"
    if token == codec.n_tokens:
        return f"< {_format_value(float(edges[0]), column, codec.unit_bins, span)}"
    if token == codec.n_tokens + 1:
        return f"> {_format_value(float(edges[-1]), column, codec.unit_bins, span)}"
    if token >= codec.n_coarse:
        return "= " + _format_value(float(codec.points[token - codec.n_coarse]), column, codec.unit_bins)
    low, high = float(edges[token]), float(edges[token + 1])
    if codec.unit_bins and high - low <= 1.0 + 1e-9:
        return _format_value((low + high) / 2, column, True)
    return (
        f"{_format_value(low, column, codec.unit_bins, span)} \N{EN DASH} "
        f"{_format_value(high, column, codec.unit_bins, span)}"
    )


def _numeric_plot(column: Column, codec: NumericCodec, real: pd.DataFrame, synthetic: pd.DataFrame) -> Figure:
    """Shares of rows over the DP-released bins: a histogram on the column's axis (dates for a datetime column), and
    beside it one bar per spike (point mass, narrow bin holding many rows), for NULL and for rows beyond the
    released range (which the generator cannot produce), any of which would flatten or hide in the histogram."""
    edges = codec.fine_edges[codec.coarse_starts]
    span = float(edges[-1] - edges[0])
    frames = [real[column.name], synthetic[column.name]]
    shares, tokens = _shares(codec, [_tokens(codec, column, values) for values in frames])
    spikes = _spike_tokens(codec, shares)
    rest = [c for c in range(codec.n_coarse) if c not in spikes]
    panels = (1 if rest else 0) + (1 if spikes else 0)
    fig, axes = plt.subplots(
        1,
        panels,
        figsize=(4.2 if panels == 1 else 6.4, 2.6),
        squeeze=False,
        gridspec_kw={"width_ratios": [3, max(1, min(len(spikes), 4))] if panels == 2 else [1]},
    )
    panels_left = list(axes[0])
    if rest:
        ax = panels_left.pop(0)
        for (label, color), values, token in zip(_SIDES, frames, tokens, strict=True):
            keep = np.isin(token, rest)
            clipped = np.clip(to_numeric(values, column)[keep], edges[0], edges[-1])
            ax.hist(
                clipped,
                bins=edges,
                weights=np.full(len(clipped), 1.0 / max(len(token), 1)),
                alpha=0.55,
                label=label,
                color=color,
            )
        if column.kind is ColumnKind.DATETIME:
            _date_axis(ax, span)
        ax.set_ylabel("share of rows", fontsize=7)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=7)
    if spikes:
        ax = panels_left.pop(0)
        width = 0.4
        positions = np.arange(len(spikes))
        for offset, ((label, color), share) in enumerate(zip(_SIDES, shares, strict=True)):
            ax.bar(positions + offset * width, [share[t] for t in spikes], width, label=label, color=color)
        ax.set_xticks(
            positions + width / 2,
            [plot_label(_spike_label(codec, column, t), 24) for t in spikes],
            rotation=30 if len(spikes) > 1 else 0,
            ha="right" if len(spikes) > 1 else "center",
            fontsize=7,
        )
        ax.tick_params(labelsize=7)
        ax.set_ylim(0, 1.05)
        if rest:
            ax.set_title("bars of their own", fontsize=8)
        else:
            ax.set_ylabel("share of rows", fontsize=7)
            ax.legend(fontsize=7)
    return fig


#: A wide table's report plots this many columns (and its heatmap this many): a page of 500 figures is read by no
#: one, and drawing them took a minute and a half of a 500-column refresh.
MAX_PLOTTED = 40

#: The plots and the heatmap read at most this many rows of each side (a random subset, fixed seed): as many as
#: a histogram shows, and on a 1M-row table the full frames' codes and ranks took 340 MiB more than any other stage.
MAX_PLOTTED_ROWS = 100_000


def plotted_columns(synthesizer: DPSynthesizer, per_column: dict[str, float] | None) -> list[str]:
    """The learned columns the report plots: all of them up to :data:`MAX_PLOTTED`, else the target and the columns
    with the lowest shape scores (a column with no score, one the synthetic rows lack, first; with no scores, the
    first columns), in table order."""
    names = [c.name for c in synthesizer.learned]
    if len(names) <= MAX_PLOTTED:
        return names
    scores = per_column or {}
    target = synthesizer.target_column
    ranked = sorted((n for n in names if n != target), key=lambda n: scores.get(n, -1.0) if scores else 0.0)
    chosen = set(ranked[: MAX_PLOTTED - (target in names)]) | ({target} if target in names else set())
    return [n for n in names if n in chosen]


def column_plots(
    real: pd.DataFrame, synthetic: pd.DataFrame, synthesizer: DPSynthesizer, columns: list[str] | None = None
) -> dict[str, str]:
    """Real vs synthetic distribution per learned column (``columns`` only, when given), over the DP-released bins
    and categories."""
    plots: dict[str, str] = {}
    for column, codec in zip(synthesizer.learned, synthesizer.codecs, strict=True):
        if columns is not None and column.name not in columns:
            continue
        if isinstance(codec, NumericCodec):
            fig = _numeric_plot(column, codec, real, synthetic)
        else:
            fig, ax = plt.subplots(figsize=(4.2, 2.6))
            if isinstance(codec, CategoricalCodec):
                labels = [str(c) for c in codec.categories[:20]]
                width = 0.4
                for offset, (frame, (label, color)) in enumerate(zip((real, synthetic), _SIDES, strict=True)):
                    shares = frame[column.name].map(str).value_counts(normalize=True)
                    ax.bar(
                        np.arange(len(labels)) + offset * width,
                        [shares.get(lbl, 0.0) for lbl in labels],
                        width,
                        label=label,
                        color=color,
                    )
                ax.set_xticks(
                    np.arange(len(labels)) + width / 2,
                    [plot_label(lbl) for lbl in labels],
                    rotation=60,
                    ha="right",
                    fontsize=7,
                )
                ax.set_ylabel("share of rows", fontsize=7)
            ax.legend(fontsize=7)
        fig.suptitle(plot_label(column.name), fontsize=9)
        plots[column.name] = _png(fig)
    return plots


def correlation_plot(real: pd.DataFrame, synthetic: pd.DataFrame, synthesizer: DPSynthesizer) -> str:
    """Heatmap of |corr(real) - corr(synthetic)| (see :func:`correlation_difference`)."""
    names, diff = correlation_difference(real, synthetic, synthesizer)
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    image = ax.imshow(diff, vmin=0, vmax=0.5, cmap="Reds")
    ax.set_xticks(range(len(names)), [plot_label(n) for n in names], rotation=70, ha="right", fontsize=7)
    ax.set_yticks(range(len(names)), [plot_label(n) for n in names], fontsize=7)
    fig.colorbar(image, ax=ax, label="|Δ correlation|")
    ax.set_title("Correlation difference, real vs synthetic", fontsize=9)
    return _png(fig)


def correlation_difference(
    real: pd.DataFrame, synthetic: pd.DataFrame, synthesizer: DPSynthesizer
) -> tuple[list[str], np.ndarray]:
    """(Columns, |corr(real) - corr(synthetic)|) over the learned columns' codes (Spearman on ranks, 0 on the
    diagonal); on a wide table the :data:`MAX_PLOTTED` columns with the largest differences, in table order."""
    names = [c.name for c in synthesizer.learned]
    pairs = list(zip(synthesizer.learned, synthesizer.codecs, strict=True))
    correlations = [
        _spearman(np.stack([codec.encode(frame[c.name]) for c, codec in pairs])) for frame in (real, synthetic)
    ]
    diff = np.abs(correlations[0] - correlations[1])
    np.fill_diagonal(diff, 0.0)
    if len(names) <= MAX_PLOTTED:
        return names, diff
    keep = np.sort(np.argsort(-diff.max(axis=1), kind="stable")[:MAX_PLOTTED])
    return [names[i] for i in keep], diff[np.ix_(keep, keep)]


def _spearman(codes: np.ndarray) -> np.ndarray:
    """Spearman correlations of the rows of ``codes`` (one variable a row; ties ranked by their mean); 0 where a
    variable is constant (pandas would give NaN)."""
    ranks = rankdata(codes, axis=1)
    ranks -= ranks.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(ranks, axis=1)
    norms[norms == 0] = np.inf
    ranks /= norms[:, None]
    return ranks @ ranks.T


def _f(value: float | None, digits: int = 4) -> str:
    return "n/a" if value is None or not np.isfinite(value) else f"{value:.{digits}f}"


def _rows(rows: Sequence[tuple[str, ...]]) -> str:
    return "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)


def _risk_row(r: AttackRisk) -> tuple[str, ...]:
    return (
        html.escape(r.name),
        _f(r.risk),
        f"[{_f(r.ci_low)}, {_f(r.ci_high)}]",
        _f(r.attack_rate),
        _f(r.control_rate),
        _f(r.baseline_rate),
    )


def _fidelity_section(s: Scores, ev: Evaluation | None) -> str:
    overall = _rows(
        [
            ("SDMetrics quality", _f(s.quality)),
            ("column shapes", _f(s.column_shapes)),
            ("column pair trends", _f(s.column_pair_trends)),
        ]
    )
    tvd = _rows([(f"{k}-way", _f(getattr(s, f"tvd_{k}way")), _f(getattr(s, f"tvd_{k}way_holdout"))) for k in (1, 2, 3)])
    per_column = ""
    if ev is not None:
        counts = ", ".join(f"{o.marginals} {k}-way" for k, o in ev.marginals.orders.items())
        per_column = (
            f"<p class='note'>Marginals measured: {counts} (3-way: a seeded sample).</p>"
            "<h3>Per column</h3><table><tr><th>column</th><th>shape score</th><th>1-way TVD synthetic</th>"
            "<th>1-way TVD holdout</th></tr>"
            + _rows(
                [
                    (html.escape(name), _f(ev.fidelity.per_column.get(name)), _f(synth), _f(hold))
                    for name, (synth, hold) in ev.marginals.per_column.items()
                ]
            )
            + "</table>"
        )
    return (
        "<section id='fidelity'><h2>Fidelity</h2><table>" + overall + "</table>"
        "<h3>Total variation distance of marginals (discretised; lower is better)</h3>"
        "<table><tr><th>marginals</th><th>synthetic vs training (mean)</th>"
        "<th>same-sized holdout vs training (the ceiling)</th></tr>" + tvd + "</table>" + per_column + "</section>"
    )


def _utility_section(s: Scores) -> str:
    if s.tstr is None:
        return "<section id='utility'><h2>Utility</h2><p>No target column declared: no TSTR check.</p></section>"
    rows = _rows([("gradient boosting", _f(s.tstr), _f(s.trtr)), ("linear", _f(s.tstr_linear), _f(s.trtr_linear))])
    return (
        f"<section id='utility'><h2>Utility ({html.escape(s.utility_metric or '')} on the real holdout)</h2>"
        "<table><tr><th>model</th><th>TSTR (trained on synthetic)</th><th>TRTR (trained on real, the ceiling)</th></tr>"
        + rows
        + "</table></section>"
    )


#: What each relation metric (:meth:`Relations.as_metrics`) says, for a child table's report.
_RELATIONS = {
    "children_tvd": "children per parent: TVD of its distribution, synthetic vs training (0 is identical)",
    "children_tvd_holdout": "the same for the holdout's parents vs training (what sampling alone gives)",
    "dangling_share": "synthetic child rows whose key names no synthetic parent",
    "dangling_share_real": "real child rows whose key names no real parent",
    "dangling_excess": "dangling rows beyond the real share (referential integrity's gated measure)",
    "null_key_share": "synthetic child rows with a NULL key",
    "null_key_share_real": "real child rows with a NULL key",
    "pair_trends": "parent column against child aggregate per parent: 1 - abs(Spearman difference) / 2",
    "order_trends": "child column against its place among its parent's children (order_by), likewise",
    "siblings": "siblings holding their parent's most common category (mean share): 1 - abs(real - synthetic)",
    "tstr": "the parent's target from its columns and its children's aggregates: trained on synthetic",
    "trtr": "the same trained on real (the ceiling)",
    "dcr_share": "units (a parent with this table's aggregates) closer to training than to the holdout (ideal 0.5)",
    "mia_auc": "membership inference over those units: ROC AUC of training against holdout units (ideal 0.5)",
}


def _relations_section(relations: Relations | None) -> str:
    if relations is None:
        return ""
    rows = [
        (html.escape(_RELATIONS[name.removeprefix("relations.")]), html.escape(name), _f(value))
        for name, value in relations.as_metrics().items()
    ]
    return (
        "<section id='relations'><h2>Relations with the parent table</h2>"
        "<table><tr><th>what it measures</th><th>metric</th><th>value</th></tr>" + _rows(rows) + "</table></section>"
    )


def _privacy_section(s: Scores, ev: Evaluation | None) -> str:
    rows = [
        ("DCR share (synthetic rows closer to training than to holdout; ideal 0.5)", _f(s.dcr_share)),
        ("NNDR ratio (nearest / second-nearest distance, training over holdout; ideal 1)", _f(s.nndr_ratio)),
        ("exact copies of training rows (share of synthetic rows)", f"{s.exact_copies_training:.4%}"),
        ("holdout rows equal to a training row (chance level)", f"{s.exact_copies_holdout:.4%}"),
        ("membership inference ROC AUC (distance attack; ideal 0.5)", _f(s.mia_auc)),
    ]
    attacks = ""
    if ev is not None:
        risks = [ev.risks.singling_out, ev.risks.linkability, *ev.risks.inference.values()]
        attacks = (
            "<h3>Anonymeter attacks (risk = excess success over the holdout control; 95% interval)</h3>"
            "<table><tr><th>attack</th><th>risk</th><th>interval</th><th>success on training</th>"
            "<th>success on holdout (control)</th><th>random baseline</th></tr>"
            + _rows([_risk_row(r) for r in risks])
            + "</table>"
            "<p class='note'>Anonymeter's method (singling out, linkability, inference), implemented in Synthgate: "
            "the <code>anonymeter</code> package requires numpy &lt; 1.27 and cannot be installed beside this "
            "project's pins.</p>"
        )
    return "<section id='privacy'><h2>Privacy</h2><table>" + _rows(rows) + "</table>" + attacks + "</section>"


def _validity_section(s: Scores, keys: tuple[str, ...]) -> str:
    suite = "passed" if s.synthetic_suite_passed else "failed: " + html.escape(", ".join(s.synthetic_suite_failures))
    key_row = (
        ("declared key (" + html.escape(", ".join(keys)) + "): share of duplicate rows", _f(s.duplicate_key_share))
        if keys
        else ("declared key", "none declared")
    )
    return (
        "<section id='validity'><h2>Validity</h2><table>"
        + _rows([("synthetic GX suite", suite), key_row])
        + "</table></section>"
    )


_REAL_DATA_USE = [
    ("gates, fidelity, utility, privacy tables", "yes: aggregate scores of training and holdout rows"),
    ("relations with the parent (a child table)", "yes: aggregate scores of the training and holdout pairs"),
    (
        "distribution plots (real side)",
        f"yes: shares over the generator's DP-released bins and categories only (of at most {MAX_PLOTTED_ROWS:,} "
        "random rows)",
    ),
    ("correlation-difference heatmap", "yes: one aggregate correlation per pair of columns (the same rows)"),
    (
        "header (table, version, rows, when, budget, code, MLflow run)",
        "no: the synthetic row count, the accountant's figures and the ledger",
    ),
    ("privacy budget", "no: the accountant's figures"),
    ("synthetic sample", "no: synthetic rows only"),
    ("stage times", "no"),
]


def _disclosures() -> str:
    items = "".join(f"<li>{html.escape(line)}</li>" for line in DISCLOSED_EXCEPTIONS)
    return (
        "<section id='disclosures'><h2>What this run lets out beyond epsilon</h2><p class='note'>Everything else "
        f"derived from the real rows went through the privacy accountant.</p><ol>{items}</ol></section>"
    )


def _verdict_sentence(ctx: ReportContext) -> str:
    """Verdict in one sentence: what happened to the run's rows and why."""
    failed = [v for v in ctx.verdicts if not v.passed]
    facts = ctx.facts
    table = f"<code>{html.escape(facts.table)}</code>" if facts else "the table"
    if not failed:
        where = f" as version {facts.next_version} of {table}" if facts and facts.next_version else f" to {table}"
        return (
            f"Verdict: PASSED. All {len(ctx.verdicts)} gates passed: the synthetic rows are cleared for "
            f"publishing{where}."
        )
    names = ", ".join(html.escape(gate_title(v.name)) for v in failed)
    stays = ""
    if facts:
        stays = (
            f"; {table} stays at version {facts.current_version}"
            if facts.current_version is not None
            else f"; {table} has no published version yet"
        )
    return (
        f"Verdict: HELD BACK. {len(failed)} of {len(ctx.verdicts)} gates failed ({names}): nothing from this run "
        f"is published{stays}."
    )


def _link_html(link: str) -> str:
    """The MLflow run: a link on a tracking server; for a local store, the command that starts the UI, then the link."""
    run = RunLink.from_text(link)
    url = html.escape(run.url)
    if run.command is None:
        return f"<a id='mlflow-link' href='{url}'>open the run in the MLflow UI</a>"
    return (
        f"Start the MLflow UI with <code id='mlflow-command'>{html.escape(run.command)}</code>, then open "
        f"<a id='mlflow-link' href='{url}'>{url}</a>"
    )


def _facts_rows(ctx: ReportContext) -> list[tuple[str, str]]:
    f = ctx.facts
    rows: list[tuple[str, str]] = []
    if f is not None:
        rows.append(
            (
                "Table",
                f"<code>{html.escape(f.table)}</code>, a synthetic copy of <code>{html.escape(f.source_table)}</code>",
            )
        )
        if f.next_version is not None:
            now = "never published before" if f.current_version is None else f"then at version {f.current_version}"
            rows.append(("Version", f"{f.next_version}, published if every gate passed ({now}; the catalog says)"))
        rows.append(("Rows", f"{f.rows:,} synthetic rows"))
        if f.started_at is not None:
            when = f.started_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
            rows.append(("When", when + (f", started by {html.escape(f.trigger)}" if f.trigger else "")))
        budget = f"epsilon {f.epsilon_spent:.3g} spent by this run"
        if f.resampled_from:
            budget += (
                f" (it re-sampled the model of run <code>{html.escape(f.resampled_from)}</code>; its rows carry "
                f"epsilon {ctx.epsilon:.3g})"
            )
        if f.epsilon_total is not None:
            budget += f"; {f.epsilon_total:.3g} spent on this table in all"
            if f.epsilon_cap is not None:
                budget += f", of its cap {f.epsilon_cap:.3g} ({max(f.epsilon_cap - f.epsilon_total, 0.0):.3g} left)"
            else:
                budget += " (no cap)"
        rows.append(("Privacy budget", budget + f"; delta {ctx.delta:.2g}; protecting {html.escape(ctx.protects)}"))
        if f.git_commit:
            if f.git_dirty is None:
                dirty = " (working tree state unknown)"
            else:
                dirty = " with uncommitted changes (dirty working tree)" if f.git_dirty else ""
            rows.append(("Code", f"commit <code>{html.escape(f.git_commit[:12])}</code>{dirty}"))
    rows.append(("MLflow run", _link_html(ctx.mlflow_link)))
    return rows


def _gate_rows(verdicts: list[GateVerdict]) -> str:
    return "".join(
        f"<tr class='{'ok' if v.passed else 'bad'}' data-gate='{html.escape(v.name)}'>"
        f"<td><b>{html.escape(gate_title(v.name))}</b><br><code class='note'>{html.escape(v.name)}</code></td>"
        f"<td class='explain'>{html.escape(gate_explanation(v.name))}</td><td class='num'>{_f(v.measured)}</td>"
        f"<td class='num'>{html.escape(v.comparison)} {v.threshold:.4f}</td>"
        f"<td class='note'>{html.escape(v.detail)}</td>"
        f"<td>{'pass' if v.passed else 'FAIL'}</td></tr>"
        for v in verdicts
    )


def _sample_html(synthetic_sample: pd.DataFrame) -> str:
    sample = synthetic_sample.head(10).map(lambda v: v[:39] + "…" if isinstance(v, str) and len(v) > 40 else v)
    table = sample.to_html(index=False, classes="sample", border=0, na_rep="∅", float_format=lambda v: f"{v:.6g}")
    return f"<div class='scroll'>{table}</div>"


def render(
    ctx: ReportContext, plots: dict[str, str], heatmap: str, synthetic_sample: pd.DataFrame, *, learned: int
) -> str:
    """The whole report as one HTML page: plots and heatmap are base64 PNGs, the sample is the first synthetic rows;
    ``learned``: how many columns the generator learned (the plots may show fewer)."""
    verdict = all(v.passed for v in ctx.verdicts)
    s = ctx.scores
    stages = "".join(f"<tr><td>{html.escape(k)}</td><td>{v:.1f} s</td></tr>" for k, v in ctx.stage_seconds.items())
    figures = "".join(
        f"<figure><img alt='{html.escape(n)}' src='data:image/png;base64,{p}'/>"
        f"<figcaption>{html.escape(n)} (real: DP bins)</figcaption></figure>"
        for n, p in plots.items()
    )
    facts = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in _facts_rows(ctx))
    plotted = _plotted_note(len(plots), learned, ranked=ctx.evaluation is not None)
    title = ctx.facts.table if ctx.facts else ctx.spec_name
    # A backslash at the end of a line below continues it: the page keeps its long lines, the source does not.
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Synthgate report: {html.escape(ctx.spec_name)}</title>
<style>
body{{font-family:system-ui,sans-serif;margin:2rem;color:#222;max-width:1200px}}
table{{border-collapse:collapse;margin:.5rem 0;max-width:100%}} \
td,th{{border:1px solid #ccc;padding:.25rem .6rem;font-size:.9rem}}
th{{text-align:left;background:#f6f6f6}} tr.ok td:last-child{{color:#1a7f37}} \
tr.bad td:last-child{{color:#c62828;font-weight:bold}}
.verdict{{font-size:1.3rem;font-weight:bold}} .verdict.ok{{color:#1a7f37}} .verdict.bad{{color:#c62828}}
figure{{display:inline-block;margin:.3rem;max-width:100%}} img{{max-width:100%}} \
td.explain{{max-width:28rem}} td.num{{white-space:nowrap}}
.note{{color:#666;font-size:.85rem}} figcaption{{font-size:.75rem;color:#666}}
.scroll{{overflow-x:auto;max-width:100%}} .sample td,.sample th{{font-size:.75rem;max-width:12rem;overflow:hidden;
text-overflow:ellipsis;white-space:nowrap}}
</style></head><body>
<h1>Synthetic refresh of <code>{html.escape(title)}</code></h1>
<section id="summary"><p class="verdict {"ok" if verdict else "bad"}">{_verdict_sentence(ctx)}</p></section>
<section id="facts"><table class="facts">{facts}</table></section>
<section id="gates"><h2>Gates</h2><p class="note">Every gate must pass before anything is published.</p>
<table><tr><th>gate</th><th>what it checks</th><th>measured</th><th>required</th><th>context</th><th>verdict</th></tr>\
{_gate_rows(ctx.verdicts)}</table></section>
<section id="budget"><h2>Privacy budget</h2><table>
<tr><td>epsilon of the published rows (all uses of the real data, {html.escape(ctx.accounting)} accounting)</td>\
<td>{ctx.epsilon:.4f}</td></tr>
<tr><td>delta</td><td>{ctx.delta:.2g}</td></tr>
<tr><td>what epsilon protects</td><td>{html.escape(ctx.protects)}</td></tr></table>
<p class="note">The checks below read real training and holdout rows after training; they are not covered by epsilon,
so only aggregates leave them, and none reaches the published table's metadata beyond the overall scores.</p></section>
{_fidelity_section(s, ctx.evaluation)}
{_utility_section(s)}
{_privacy_section(s, ctx.evaluation)}
{_validity_section(s, ctx.keys)}
{_relations_section(ctx.relations)}
<section id="distributions"><h2>Distributions, real vs synthetic</h2>
<p class="note">Real data is shown only as shares over the DP-released bins and categories (never a real row or value).
A bin holding many rows in a narrow range (a spike, such as a column that is mostly 0) and NULL get bars of their
own beside the histogram; datetime columns are on a date axis.{plotted}</p>\
{figures}</section>
<section id="correlations"><h2>Correlation difference</h2>{_heatmap_note(learned)}
<figure><img alt="correlation difference" src="data:image/png;base64,{heatmap}"/></figure></section>
<section id="sample"><h2>Synthetic sample</h2>{_sample_html(synthetic_sample)}</section>
<section id="real-data"><h2>Which figures use real data</h2><table><tr><th>figure</th><th>uses real data</th></tr>
{_rows([(html.escape(a), html.escape(b)) for a, b in _REAL_DATA_USE])}</table></section>
{_disclosures()}
<section id="timing"><h2>Stage times</h2><table>{stages}</table></section>
</body></html>"""


def _plotted_note(plotted: int, learned: int, *, ranked: bool) -> str:
    if plotted >= learned:
        return ""
    if not ranked:
        return f" Shown: the first {plotted} of the {learned} learned columns."
    return (
        f" Shown: {plotted} of the {learned} learned columns, those with the lowest shape scores and any target column "
        "(every column's score is under Fidelity)."
    )


def _heatmap_note(learned: int) -> str:
    if learned <= MAX_PLOTTED:
        return ""
    return f"<p class='note'>The {MAX_PLOTTED} of {learned} columns with the largest differences.</p>"


@dataclass(frozen=True)
class WrittenReport:
    """Where :func:`write_report` wrote the page, and its plots as PNG bytes."""

    path: Path
    plots: dict[str, bytes]  # name -> PNG, also logged to MLflow as images


def _at_most(frame: pd.DataFrame, rows: int) -> pd.DataFrame:
    """``frame``, or a random ``rows`` of it (seed 0: the same rows for the same frame) when it is longer."""
    return frame if len(frame) <= rows else frame.sample(rows, random_state=0)


def write_report(
    path: Path,
    ctx: ReportContext,
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    synthesizer: DPSynthesizer,
) -> WrittenReport:
    """Write the self-contained HTML page; returns its path and its plots as PNG bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    shown = plotted_columns(synthesizer, ctx.evaluation.fidelity.per_column if ctx.evaluation else None)
    real_rows, synthetic_rows = (_at_most(frame, MAX_PLOTTED_ROWS) for frame in (real, synthetic))
    plots = column_plots(real_rows, synthetic_rows, synthesizer, shown)
    heatmap = correlation_plot(real_rows, synthetic_rows, synthesizer)
    page = render(ctx, plots, heatmap, synthetic, learned=len(synthesizer.learned))
    path.write_text(page, encoding="utf-8")
    images = {f"distribution_{name}": base64.b64decode(png) for name, png in plots.items()}
    images["correlation_difference"] = base64.b64decode(heatmap)
    return WrittenReport(path, images)
