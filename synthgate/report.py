"""The run report: one self-contained HTML file (plots inlined as PNG), aggregates only.

Real data appears only as histograms over the generator's DP-released bins and as bar charts
over its DP-released categories: no real row, no real extreme value, no category that the DP
selection did not release.
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from synthgate.disclosures import DISCLOSED_EXCEPTIONS  # noqa: E402
from synthgate.evaluation.attacks import AttackRisk  # noqa: E402
from synthgate.evaluation.scorecard import Evaluation  # noqa: E402
from synthgate.gates import GateVerdict, Scores  # noqa: E402
from synthgate.generator.encoders import CategoricalCodec, NumericCodec, to_numeric  # noqa: E402
from synthgate.generator.synthesizer import DPSynthesizer  # noqa: E402


@dataclass(frozen=True)
class ReportContext:
    spec_name: str
    run_id: str
    epsilon: float
    delta: float
    accounting: str
    scores: Scores
    verdicts: list[GateVerdict]
    stage_seconds: dict[str, float]
    mlflow_url: str
    evaluation: Evaluation | None = None
    keys: tuple[str, ...] = ()


#: Longest label a plot shows: longer category values and column names are cut (a 100 kB label exhausts memory).
MAX_LABEL = 40


def plot_label(value: object, limit: int = MAX_LABEL) -> str:
    """A category or column name as a plot label: one line, at most ``limit`` characters, no mathtext (``$``)."""
    text = " ".join(str(value).split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text.replace("$", r"\$")


def _png(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode()


def column_plots(real: pd.DataFrame, synthetic: pd.DataFrame, synthesizer: DPSynthesizer) -> dict[str, str]:
    """Real vs synthetic distribution per learned column, over the DP-released bins and categories."""
    plots: dict[str, str] = {}
    for column, codec in zip(synthesizer.learned, synthesizer.codecs):
        fig, ax = plt.subplots(figsize=(4.2, 2.6))
        if isinstance(codec, NumericCodec):
            edges = codec.fine_edges[codec.coarse_starts]
            for frame, label, color in ((real, "real", "#4c72b0"), (synthetic, "synthetic", "#dd8452")):
                values = to_numeric(frame[column.name], column)
                values = np.clip(values[~np.isnan(values)], edges[0], edges[-1])
                weights = np.full(len(values), 1.0 / max(len(values), 1))
                ax.hist(values, bins=edges, weights=weights, alpha=0.55, label=label, color=color)
        elif isinstance(codec, CategoricalCodec):
            labels = [str(c) for c in codec.categories[:20]]
            width = 0.4
            for offset, (frame, label, color) in enumerate(((real, "real", "#4c72b0"), (synthetic, "synthetic", "#dd8452"))):
                shares = frame[column.name].map(str).value_counts(normalize=True)
                ax.bar(np.arange(len(labels)) + offset * width, [shares.get(lbl, 0.0) for lbl in labels], width, label=label, color=color)
            ax.set_xticks(np.arange(len(labels)) + width / 2, [plot_label(lbl) for lbl in labels], rotation=60, ha="right", fontsize=7)
        ax.set_title(plot_label(column.name), fontsize=9)
        ax.legend(fontsize=7)
        plots[column.name] = _png(fig)
    return plots


def correlation_plot(real: pd.DataFrame, synthetic: pd.DataFrame, synthesizer: DPSynthesizer) -> str:
    """Heatmap of |corr(real) - corr(synthetic)| over the learned columns' codes (Spearman on ranks)."""
    names = [c.name for c in synthesizer.learned]
    codes = [
        pd.DataFrame({c.name: codec.encode(frame[c.name]) for c, codec in zip(synthesizer.learned, synthesizer.codecs)})
        for frame in (real, synthetic)
    ]
    diff = (codes[0].corr(method="spearman") - codes[1].corr(method="spearman")).abs().fillna(0).to_numpy()
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    image = ax.imshow(diff, vmin=0, vmax=0.5, cmap="Reds")
    ax.set_xticks(range(len(names)), [plot_label(n) for n in names], rotation=70, ha="right", fontsize=7)
    ax.set_yticks(range(len(names)), [plot_label(n) for n in names], fontsize=7)
    fig.colorbar(image, ax=ax, label="|Δ correlation|")
    ax.set_title("Correlation difference, real vs synthetic", fontsize=9)
    return _png(fig)


def _f(value: float | None, digits: int = 4) -> str:
    return "n/a" if value is None or not np.isfinite(value) else f"{value:.{digits}f}"


def _rows(rows: list[tuple[str, ...]]) -> str:
    return "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)


def _risk_row(r: AttackRisk) -> tuple[str, ...]:
    return (html.escape(r.name), _f(r.risk), f"[{_f(r.ci_low)}, {_f(r.ci_high)}]", _f(r.attack_rate), _f(r.control_rate),
            _f(r.baseline_rate), str(r.attacks))


def _fidelity_section(s: Scores, ev: Evaluation | None) -> str:
    overall = _rows([("SDMetrics quality", _f(s.quality)), ("column shapes", _f(s.column_shapes)),
                     ("column pair trends", _f(s.column_pair_trends))])
    tvd = _rows([(f"{k}-way", _f(getattr(s, f"tvd_{k}way")), _f(getattr(s, f"tvd_{k}way_holdout"))) for k in (1, 2, 3)])
    per_column = ""
    if ev is not None:
        counts = ", ".join(f"{o.marginals} {k}-way" for k, o in ev.marginals.orders.items())
        per_column = (
            f"<p class='note'>Marginals measured: {counts} (3-way: a seeded sample).</p>"
            "<h3>Per column</h3><table><tr><th>column</th><th>shape score</th><th>1-way TVD synthetic</th>"
            "<th>1-way TVD holdout</th></tr>"
            + _rows([(html.escape(name), _f(ev.fidelity.per_column.get(name)), _f(synth), _f(hold))
                     for name, (synth, hold) in ev.marginals.per_column.items()])
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
        + rows + "</table></section>"
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
            "<th>success on holdout (control)</th><th>random baseline</th><th>attacks</th></tr>"
            + _rows([_risk_row(r) for r in risks]) + "</table>"
            "<p class='note'>Anonymeter's method (singling out, linkability, inference), implemented in Synthgate: "
            "the <code>anonymeter</code> package requires numpy &lt; 1.27 and cannot be installed beside this "
            "project's pins.</p>"
        )
    return "<section id='privacy'><h2>Privacy</h2><table>" + _rows(rows) + "</table>" + attacks + "</section>"


def _validity_section(s: Scores, keys: tuple[str, ...]) -> str:
    suite = "passed" if s.synthetic_suite_passed else "failed: " + html.escape(", ".join(s.synthetic_suite_failures))
    key_row = (
        ("declared key (" + html.escape(", ".join(keys)) + "): share of duplicate rows", _f(s.duplicate_key_share))
        if keys else ("declared key", "none declared")
    )
    return "<section id='validity'><h2>Validity</h2><table>" + _rows([("synthetic GX suite", suite), key_row]) + "</table></section>"


_REAL_DATA_USE = [
    ("gates, fidelity, utility, privacy tables", "yes: aggregate scores of training and holdout rows"),
    ("distribution plots (real side)", "yes: shares over the generator's DP-released bins and categories only"),
    ("correlation-difference heatmap", "yes: one aggregate correlation per pair of columns"),
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


def render(ctx: ReportContext, plots: dict[str, str], heatmap: str, synthetic_sample: pd.DataFrame) -> str:
    verdict = "PASSED" if all(v.passed for v in ctx.verdicts) else "HELD BACK"
    failed = [v.name for v in ctx.verdicts if not v.passed]
    gate_rows = "".join(
        f"<tr class='{'ok' if v.passed else 'bad'}'><td>{html.escape(v.name)}</td><td>{_f(v.measured)}</td>"
        f"<td>{v.comparison} {v.threshold:.4f}</td><td class='note'>{html.escape(v.detail)}</td>"
        f"<td>{'pass' if v.passed else 'FAIL'}</td></tr>"
        for v in ctx.verdicts
    )
    s = ctx.scores
    stages = "".join(f"<tr><td>{html.escape(k)}</td><td>{v:.1f} s</td></tr>" for k, v in ctx.stage_seconds.items())
    figures = "".join(
        f"<figure><img alt='{html.escape(n)}' src='data:image/png;base64,{p}'/>"
        f"<figcaption>{html.escape(n)} (real: DP bins)</figcaption></figure>"
        for n, p in plots.items()
    )
    sample = synthetic_sample.head(10).map(lambda v: v[:79] + "…" if isinstance(v, str) and len(v) > 80 else v)
    sample_html = sample.to_html(index=False, classes="sample", border=0, na_rep="∅")
    held = f"<p>Failed gates: {html.escape(', '.join(failed))}</p>" if failed else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Synthgate report: {html.escape(ctx.spec_name)}</title>
<style>
body{{font-family:system-ui,sans-serif;margin:2rem;color:#222;max-width:1200px}}
table{{border-collapse:collapse;margin:.5rem 0}} td,th{{border:1px solid #ccc;padding:.25rem .6rem;font-size:.9rem}}
tr.ok td:last-child{{color:#1a7f37}} tr.bad td:last-child{{color:#c62828;font-weight:bold}}
.verdict{{font-size:1.4rem;font-weight:bold}} figure{{display:inline-block;margin:.3rem}}
.note{{color:#666;font-size:.85rem}} .sample td{{font-size:.75rem}} figcaption{{font-size:.75rem;color:#666}}
</style></head><body>
<h1>Synthetic refresh of <code>{html.escape(ctx.spec_name)}</code></h1>
<section id="summary"><p class="verdict">Verdict: {verdict}</p>{held}
<p>Run <code>{html.escape(ctx.run_id)}</code> · <a href="{html.escape(ctx.mlflow_url)}">MLflow run</a></p></section>
<section id="gates"><h2>Gates</h2><table><tr><th>gate</th><th>measured</th><th>required</th><th>context</th><th>verdict</th></tr>{gate_rows}</table></section>
<section id="budget"><h2>Privacy budget</h2><table>
<tr><td>epsilon of the published rows (all uses of the real data, {html.escape(ctx.accounting)} accounting)</td><td>{ctx.epsilon:.4f}</td></tr>
<tr><td>delta</td><td>{ctx.delta:.2g}</td></tr></table>
<p class="note">The checks below read real training and holdout rows after training; they are not covered by epsilon,
so only aggregates leave them, and none reaches the published table's metadata beyond the overall scores.</p></section>
{_fidelity_section(s, ctx.evaluation)}
{_utility_section(s)}
{_privacy_section(s, ctx.evaluation)}
{_validity_section(s, ctx.keys)}
<section id="distributions"><h2>Distributions, real vs synthetic</h2>
<p class="note">Real data is shown only as shares over the DP-released bins and categories (never a real row or value).</p>{figures}</section>
<section id="correlations"><h2>Correlation difference</h2>
<figure><img alt="correlation difference" src="data:image/png;base64,{heatmap}"/></figure></section>
<section id="sample"><h2>Synthetic sample</h2>{sample_html}</section>
<section id="real-data"><h2>Which figures use real data</h2><table><tr><th>figure</th><th>uses real data</th></tr>
{_rows([(html.escape(a), html.escape(b)) for a, b in _REAL_DATA_USE])}</table></section>
{_disclosures()}
<section id="timing"><h2>Stage times</h2><table>{stages}</table></section>
</body></html>"""


@dataclass(frozen=True)
class WrittenReport:
    path: Path
    plots: dict[str, bytes]  # name -> PNG, also logged to MLflow as images


def write_report(
    path: Path,
    ctx: ReportContext,
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    synthesizer: DPSynthesizer,
) -> WrittenReport:
    """Write the self-contained HTML page; returns its path and its plots as PNG bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    plots = column_plots(real, synthetic, synthesizer)
    heatmap = correlation_plot(real, synthetic, synthesizer)
    page = render(ctx, plots, heatmap, synthetic)
    path.write_text(page, encoding="utf-8")
    images = {f"distribution_{name}": base64.b64decode(png) for name, png in plots.items()}
    images["correlation_difference"] = base64.b64decode(heatmap)
    return WrittenReport(path, images)
