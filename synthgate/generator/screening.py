"""Which learned columns depend on another: one DP release before training a wide table.

DP-SGD clips each row's gradient as a whole, so on a table of m columns every head gets about a 1/sqrt(m) share of
it while the noise stays the same: on a generated 55-column credit file at epsilon 1 the network learned none of
its strong pairs (grade and interest rate, loan and monthly payment: column pair trends 0.67 against 0.82 for 15 of
the same columns, and no better at epsilon 4). Most columns of such a table depend on no other.

The screen cuts every learned column in two at about half of its released marginal (numbers and sortable labels in
their order, so a monotone relation shows) and releases, in one Gaussian mechanism, how often each pair of cuts
agree, with each column's own share of each side (:func:`screen`). A pair whose agreement departs from what
independent columns give by a margin (corrected for the number of pairs) over the noise and the rows' sampling
spread depends. A column in
no such pair gets a head that learns only its marginal (a bias, starting from the released one,
:attr:`Codec.prior`; :meth:`AutoregressiveNet.fix_marginal`): its share of each clipped gradient is that of a bias,
not of a layer reading every earlier column, and the rest goes to the columns that relate and to the target, which
reads every column. On the credit file: pairs 0.67 -> 0.76, quality 0.80-0.82 -> 0.85.

Each row adds the outer product of its signs and a constant, scaled to norm 1: sensitivity 1 (with a privacy unit,
a unit's rows each weigh 1/its rows).
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
_CHUNK_CELLS = 1 << 22  # rows x columns of the signs held at once (32 MiB)


def upper_side(codec: Codec) -> np.ndarray:
    """Which of the column's tokens fall on the cut's upper side: the token boundary nearest half of the released
    marginal, tokens in their order (numbers' bins, then point masses and NULL; categories by label, then RARE and
    NULL). Post-processing of the codec's prior; the side's share is then measured by the release itself."""
    assert codec.prior is not None
    order = _token_order(codec)
    mass = np.cumsum(codec.prior[order])
    cut = int(np.argmin(np.abs(mass[:-1] - 0.5))) if len(order) > 1 else 0
    upper = np.zeros(codec.n_tokens, dtype=bool)
    upper[order[cut + 1 :]] = True
    return upper


def _token_order(codec: Codec) -> np.ndarray:
    """Numbers keep their token order; categories go by label as releases sort them (numbers as numbers, so grades
    A-G or sizes 1-12 split in order), then RARE and NULL."""
    if isinstance(codec, CategoricalCodec):
        labels = codec.categories
        by_label = sorted(range(len(labels)), key=lambda i: (type(labels[i]).__name__, labels[i]))
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
    """Whether each column is in a pair that clearly depends (one release of noise ``sigma``, sensitivity 1).

    ``tokens``: rows x columns; ``rows``: their DP count (with a unit, of units); ``weights``: each row's weight
    (with a unit: 1 / its unit's rows), None for 1.

    Each row's signs s (+1 below its column's cut, -1 above) and a constant 1 make x = [s, 1] / sqrt(m + 1), of norm
    1; the release is the upper triangle of the sum of x x^T: every pair's agreement, and with the constant each
    column's mean side. A pair depends when its agreement departs from the product of the two means by more than a
    margin (corrected for the number of pairs) times its spread under independence: the release's noise and the
    rows' own sampling spread.
    """
    m = tokens.shape[1]
    k = m + 1
    sides = [upper_side(codec) for codec in codecs]
    gram = np.zeros((k, k))
    step = max(1024, _CHUNK_CELLS // k)
    for start in range(0, len(tokens), step):
        block = tokens[start : start + step]
        x = np.ones((len(block), k))
        for j, upper in enumerate(sides):
            x[:, j] = np.where(upper[block[:, j]], -1.0, 1.0)
        x /= math.sqrt(k)
        gram += (x if weights is None else x * weights[start : start + step, None]).T @ x
    top = np.triu_indices(k, 1)
    released = np.zeros((k, k))
    released[top] = accountant.gaussian("screen:pairs", gram[top], sigma)
    # Post-processing: each column's mean side, the agreement expected of independent cuts and its spread
    n = max(rows, 1.0)
    mean = np.clip(k * released[:m, m] / n, -1.0, 1.0)
    one, two = np.triu_indices(m, 1)
    departure = released[one, two] - n * mean[one] * mean[two] / k
    spread = np.sqrt(
        sigma**2 * (1.0 + mean[one] ** 2 + mean[two] ** 2) + n * (1.0 - mean[one] ** 2) * (1.0 - mean[two] ** 2) / k**2
    )
    margin = float(norm.isf(FALSE_PAIRS / max(len(one), 1) / 2.0))
    related = np.abs(departure) > margin * spread
    depends = np.zeros(m, dtype=bool)
    depends[one[related]] = True
    depends[two[related]] = True
    return depends
