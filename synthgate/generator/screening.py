"""Which learned columns depend on another: one DP release before training a wide table.

DP-SGD clips each row's gradient as a whole, so on a table of m columns every head gets about a 1/sqrt(m) share of
it while the noise stays the same: on a generated 55-column credit file at epsilon 1 the network learned none of
its strong pairs (grade and interest rate, loan and monthly payment: column pair trends 0.67 against 0.82 for 15 of
the same columns, and no better at epsilon 4). Most columns of such a table depend on no other.

The screen cuts every learned column in two at about half of its released marginal (numbers and sortable labels in
their order, so a monotone relation shows) and releases, in one Gaussian mechanism, how often each pair of cuts
agree. A pair whose agreement clears the noise by a margin corrected for the number of pairs depends. A column in
no such pair gets a head that learns only its marginal (a bias, starting from the released one,
:attr:`Codec.prior`; :meth:`AutoregressiveNet.fix_marginal`): its share of each clipped gradient is that of a bias,
not of a layer reading every earlier column, and the rest goes to the columns that relate and to the target, which
reads every column. On the credit file: pairs 0.67 -> 0.76, quality 0.80-0.82 -> 0.85.

Each row adds the outer product of its signs scaled by 1/sqrt(m), of Frobenius norm 1: sensitivity 1 (with a
privacy unit, a unit's rows each weigh 1/its rows).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import norm

from synthgate.generator.accounting import PrivacyAccountant
from synthgate.generator.codecs import CategoricalCodec, Codec

#: Learned columns from which the screen runs: narrower tables train every head (Adult's 15 learn their pairs).
SCREEN_MIN_COLUMNS = 32
#: Share of the zCDP budget the screen takes (from DP-SGD's part).
SCREEN_SHARE = 0.1
#: Expected false pairs over the whole screen: the margin each pair must clear.
FALSE_PAIRS = 0.05


def signs(codec: Codec, tokens: np.ndarray) -> tuple[np.ndarray, float]:
    """Each row's side of the column's cut (+1 or -1), and the side's mean by the released marginal.

    The cut is the token boundary nearest half of the released marginal, tokens in their order (numbers' bins, then
    point masses and NULL; categories sorted by label). Post-processing of the codec's prior.
    """
    assert codec.prior is not None
    order = _token_order(codec)
    mass = np.cumsum(codec.prior[order])
    cut = int(np.argmin(np.abs(mass[:-1] - 0.5))) if len(order) > 1 else 0
    upper = np.zeros(len(order), dtype=bool)
    upper[order[cut + 1 :]] = True
    mean = float(1.0 - 2.0 * codec.prior[upper].sum())
    return np.where(upper[tokens], -1.0, 1.0), mean


def _token_order(codec: Codec) -> np.ndarray:
    """Numbers keep their token order; categories go by label (ordinal labels such as grades A-G then split in
    order), then RARE and NULL."""
    if isinstance(codec, CategoricalCodec):
        labels = [str(c) for c in codec.categories]
        by_label = sorted(range(len(labels)), key=labels.__getitem__)
        return np.array([*by_label, codec.rare_token, codec.null_token], dtype=np.int64)
    return np.arange(codec.n_tokens, dtype=np.int64)


def screen(
    tokens: np.ndarray,
    codecs: list[Codec],
    *,
    rows: float,
    accountant: PrivacyAccountant,
    sigma: float,
    weights: np.ndarray | None = None,
) -> np.ndarray:
    """Whether each column is in a pair that clearly depends (one release of noise ``sigma`` with sensitivity 1).

    ``tokens``: rows x columns; ``rows``: their DP count (with a unit, of units); ``weights``: each row's weight
    (with a unit: 1 / its unit's rows), None for 1.
    """
    m = tokens.shape[1]
    sides, means = zip(*(signs(codec, tokens[:, j]) for j, codec in enumerate(codecs)), strict=True)
    x = np.stack(sides, axis=1) / math.sqrt(m)
    weighted = x if weights is None else x * weights[:, None]
    upper = np.triu_indices(m, 1)
    agreement = (weighted.T @ x)[upper]  # each row adds x x^T: Frobenius norm |x|^2 = 1
    released = accountant.gaussian("screen:pairs", agreement, sigma)
    expected = rows * np.outer(means, means)[upper] / m  # agreement of independent cuts (post-processing)
    margin = float(norm.isf(FALSE_PAIRS / max(len(agreement), 1) / 2.0))
    related = np.abs(released - expected) > margin * sigma
    depends = np.zeros(m, dtype=bool)
    depends[upper[0][related]] = True
    depends[upper[1][related]] = True
    return depends
