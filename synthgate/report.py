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
            ax.set_xticks(np.arange(len(labels)) + width / 2, labels, rotation=60, ha="right", fontsize=7)
        ax.set_title(column.name, fontsize=9)
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
    ax.set_xticks(range(len(names)), names, rotation=70, ha="right", fontsize=7)
    ax.set_yticks(range(len(names)), names, fontsize=7)
    fig.colorbar(image, ax=ax, label="|Δ correlation|")
    ax.set_title("Correlation difference, real vs synthetic", fontsize=9)
    return _png(fig)


def render(ctx: ReportContext, plots: dict[str, str], heatmap: str, synthetic_sample: pd.DataFrame) -> str:
    verdict = "PASSED" if all(v.passed for v in ctx.verdicts) else "HELD BACK"
    gate_rows = "".join(
        f"<tr class='{'ok' if v.passed else 'bad'}'><td>{html.escape(v.name)}</td><td>{v.measured:.4f}</td>"
        f"<td>{v.comparison} {v.threshold:.4f}</td><td>{'pass' if v.passed else 'FAIL'}</td></tr>"
        for v in ctx.verdicts
    )
    s = ctx.scores
    utility = (
        f"<tr><td>TSTR {s.utility_metric} (synthetic → real holdout)</td><td>{s.tstr:.4f}</td></tr>"
        f"<tr><td>TRTR {s.utility_metric} (real → real holdout, the ceiling)</td><td>{s.trtr:.4f}</td></tr>"
        if s.tstr is not None
        else ""
    )
    stages = "".join(f"<tr><td>{html.escape(k)}</td><td>{v:.1f} s</td></tr>" for k, v in ctx.stage_seconds.items())
    figures = "".join(f"<figure><img alt='{html.escape(n)}' src='data:image/png;base64,{p}'/></figure>" for n, p in plots.items())
    sample_html = synthetic_sample.head(10).to_html(index=False, classes="sample", border=0, na_rep="∅")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Synthgate report: {html.escape(ctx.spec_name)}</title>
<style>
body{{font-family:system-ui,sans-serif;margin:2rem;color:#222;max-width:1200px}}
table{{border-collapse:collapse;margin:.5rem 0}} td,th{{border:1px solid #ccc;padding:.25rem .6rem;font-size:.9rem}}
tr.ok td:last-child{{color:#1a7f37}} tr.bad td:last-child{{color:#c62828;font-weight:bold}}
.verdict{{font-size:1.4rem;font-weight:bold}} figure{{display:inline-block;margin:.3rem}}
.note{{color:#666;font-size:.85rem}} .sample td{{font-size:.75rem}}
</style></head><body>
<h1>Synthetic refresh of <code>{html.escape(ctx.spec_name)}</code></h1>
<section id="summary"><p class="verdict">Verdict: {verdict}</p>
<p>Run <code>{html.escape(ctx.run_id)}</code> · <a href="{html.escape(ctx.mlflow_url)}">MLflow run</a></p></section>
<section id="gates"><h2>Gates</h2><table><tr><th>gate</th><th>measured</th><th>required</th><th>verdict</th></tr>{gate_rows}</table></section>
<section id="budget"><h2>Privacy budget</h2><table>
<tr><td>epsilon spent (all uses of the real data, {html.escape(ctx.accounting)} accounting)</td><td>{ctx.epsilon:.4f}</td></tr>
<tr><td>delta</td><td>{ctx.delta:.2g}</td></tr></table></section>
<section id="fidelity"><h2>Fidelity and utility</h2><table>
<tr><td>SDMetrics quality</td><td>{s.quality:.4f}</td></tr><tr><td>column shapes</td><td>{s.column_shapes:.4f}</td></tr>
<tr><td>column pair trends</td><td>{s.column_pair_trends:.4f}</td></tr>{utility}</table></section>
<section id="privacy"><h2>Privacy checks</h2><table>
<tr><td>DCR share (synthetic rows closer to training than to holdout; ideal 0.5)</td><td>{s.dcr_share:.4f}</td></tr>
<tr><td>exact copies of training rows</td><td>{s.exact_copies_training:.4%}</td></tr>
<tr><td>exact copies of holdout rows (chance level)</td><td>{s.exact_copies_holdout:.4%}</td></tr></table></section>
<section id="distributions"><h2>Distributions, real vs synthetic</h2>
<p class="note">Real data is shown only as shares over the DP-released bins and categories.</p>{figures}
<figure><img alt="correlation difference" src="data:image/png;base64,{heatmap}"/></figure></section>
<section id="sample"><h2>Synthetic sample</h2>{sample_html}</section>
<section id="timing"><h2>Stage times</h2><table>{stages}</table></section>
<p class="note">Figures computed on real data (fidelity, utility, privacy checks, the real histograms) are aggregates;
they are kept out of the published table's metadata.</p>
</body></html>"""


def write_report(
    path: Path,
    ctx: ReportContext,
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    synthesizer: DPSynthesizer,
) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    page = render(ctx, column_plots(real, synthetic, synthesizer), correlation_plot(real, synthetic, synthesizer), synthetic)
    path.write_text(page, encoding="utf-8")
    return path
