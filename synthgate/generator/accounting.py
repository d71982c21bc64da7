"""One privacy accountant for every use of the real data.

Every release is a (subsampled) Gaussian mechanism: DP histograms and counts are Gaussian
mechanisms with sample rate 1 and one step; DP-SGD is the Poisson-subsampled Gaussian with
its sample rate and step count. The whole history is composed at once with the PRV
accountant (Gopi et al. 2021) and, where PRV fails numerically, with RDP.

The only part outside that composition is category selection by thresholding noisy counts
(a record can create a new category); its failure probability ``delta_selection`` is added
to the composed delta, so ``delta_total = delta_composed + delta_selection``.

The accountant also holds the noise of the releases it records: a :class:`SecureNoise` seeded from
operating-system entropy when the accountant is created (one per fit), so :meth:`PrivacyAccountant.gaussian`
takes no seed or generator and no seeded, replayable randomness can reach a release (see :mod:`noise`).
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from opacus.accountants import PRVAccountant, RDPAccountant

from synthgate.errors import PrivacyBudgetError
from synthgate.generator.noise import SecureNoise

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Release:
    """One mechanism applied to the real data."""

    purpose: str
    noise_multiplier: float
    sample_rate: float = 1.0
    steps: int = 1


@dataclass
class PrivacyAccountant:
    """Records every release and composes them into one (epsilon, delta) figure."""

    delta: float
    delta_selection: float = 0.0
    releases: list[Release] = field(default_factory=list)
    # Fresh OS entropy per accountant, i.e. per fit; not a constructor argument, never shown or compared.
    noise: SecureNoise = field(default_factory=SecureNoise, init=False, repr=False, compare=False)

    @property
    def delta_composed(self) -> float:
        """The delta left to the composed releases once category selection has its share."""
        return self.delta - self.delta_selection

    def record(self, release: Release) -> None:
        """Add a mechanism applied to the real data (DP-SGD records itself here)."""
        self.releases.append(release)

    def gaussian(
        self, purpose: str, counts: np.ndarray, noise_multiplier: float, *, sensitivity: float = 1.0
    ) -> np.ndarray:
        """Release ``counts`` (L2 sensitivity ``sensitivity``) with Gaussian noise of standard deviation
        ``noise_multiplier * sensitivity`` from OS entropy, and record it.

        Every released value is rounded to an integer here, where it is released: post-processing
        (free under DP) that removes the low-order bits of the floating-point noise (Mironov 2012).
        """
        self.record(Release(purpose, noise_multiplier))
        counts = np.asarray(counts, dtype=float)
        return np.rint(counts + self.noise.normal(noise_multiplier * sensitivity, counts.shape))

    def epsilon(self, extra: list[Release] | None = None) -> tuple[float, str]:
        """Composed epsilon at ``delta_composed``, and the method that computed it."""
        return compose_epsilon(self.releases + (extra or []), self.delta_composed)


def _history(releases: list[Release]) -> list[tuple[float, float, int]]:
    """The accountants' history: equal mechanisms merged into steps, and every full (not subsampled) Gaussian release
    into one of noise ``(sum 1 / sigma^2) ** -1/2``. Gaussian mechanisms compose exactly so (their privacy losses are
    Gaussian and add), and the PRV accountant's cost grows with each distinct mechanism: a wide table's releases at
    a dozen different noises doubled Adult's accounting time."""
    merged: dict[tuple[float, float], int] = {}
    precision = 0.0
    for r in releases:
        if r.sample_rate == 1.0:
            precision += r.steps / r.noise_multiplier**2
        else:
            merged[(r.noise_multiplier, r.sample_rate)] = merged.get((r.noise_multiplier, r.sample_rate), 0) + r.steps
    full = [(precision**-0.5, 1.0, 1)] if precision > 0 else []
    return full + [(sigma, q, steps) for (sigma, q), steps in merged.items()]


def compose_epsilon(releases: list[Release], delta: float) -> tuple[float, str]:
    """Epsilon of the composition of ``releases`` at ``delta``: PRV, falling back to RDP."""
    if not releases:
        return 0.0, "none"
    history = _history(releases)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            prv = PRVAccountant()
            prv.history = history
            eps = float(prv.get_epsilon(delta=delta, eps_error=0.01))
            if math.isfinite(eps) and eps > 0:
                return eps, "prv"
        except Exception as exc:  # noqa: BLE001 - PRV fails on extreme parameters; RDP does not
            log.debug("PRV accounting failed (%s); falling back to RDP", type(exc).__name__)
        rdp = RDPAccountant()
        rdp.history = history
        alphas = [1 + x / 10.0 for x in range(1, 100)] + list(range(12, 256)) + [512, 1024, 4096]
        return float(rdp.get_epsilon(delta=delta, alphas=alphas)), "rdp"


def bisect_sigma(epsilon_of: Callable[[float], float], target: float, lo: float = 0.3, hi: float = 5000.0) -> float:
    """Smallest noise multiplier whose epsilon is at most ``target`` (epsilon decreases in sigma)."""
    if epsilon_of(hi) > target:
        raise PrivacyBudgetError(
            f"epsilon {target:.4g} is too small for any useful release (even noise multiplier {hi:g} exceeds it)"
        )
    if epsilon_of(lo) <= target:
        return lo
    for _ in range(40):
        mid = math.sqrt(lo * hi)
        if epsilon_of(mid) > target:
            lo = mid
        else:
            hi = mid
        if hi / lo < 1.005:
            break
    return hi


@dataclass(frozen=True)
class Stage:
    """One model's part of a fit that trains several on one accountant (a linked parent, then its child), so that
    every release of the fit composes together (PRV) instead of the parts' epsilons adding up.

    ``epsilon``: what the accountant may have composed once this model has trained (the last model's: the budget);
    ``rho``: the zCDP budget this model plans its own releases and training with; ``selection_delta``: its part of the
    accountant's ``delta_selection``.
    """

    accountant: PrivacyAccountant
    epsilon: float
    rho: float
    selection_delta: float


def zcdp_epsilon(rho: float, delta: float) -> float:
    """The epsilon of a rho-zCDP mechanism at ``delta`` (Bun & Steinke): the inverse of :func:`zcdp_rho`."""
    return rho + 2.0 * math.sqrt(rho * math.log(1 / delta))


def zcdp_rho(epsilon: float, delta: float) -> float:
    """The rho with rho + 2 sqrt(rho ln(1/delta)) = epsilon (zCDP to approximate DP, Bun & Steinke)."""
    root = -math.sqrt(math.log(1 / delta)) + math.sqrt(math.log(1 / delta) + epsilon)
    return root * root


def default_preprocessing_share(columns: int) -> float:
    """Share of the zCDP budget for the releases before training when the spec sets none: 0.3 up to 15 learned
    columns, then growing with the square root of their number, to at most 0.5 (from 42 columns).

    Every column's releases must clear thresholds set by their noise (a range, a category list), while DP-SGD's
    noise is shared by all columns: on a wide table the releases, not the network, lose columns first.
    """
    return min(0.5, 0.3 * math.sqrt(max(columns, 15) / 15))


def preprocessing_noise(rho: float, *, weight: float, share: float) -> float:
    """Noise multiplier of a weight-1 release, when Gaussian releases of total ``weight`` use ``share`` of the zCDP
    budget ``rho`` (a release of weight w gets noise sigma / sqrt(w)).

    A Gaussian release with noise multiplier sigma costs rho = 1 / (2 sigma^2); zCDP composes additively.
    """
    return math.sqrt(weight / (2 * share * rho))


def sgd_noise_for_budget(accountant: PrivacyAccountant, epsilon: float, sample_rate: float, steps: int) -> float:
    """Smallest DP-SGD noise multiplier such that everything recorded plus training fits ``epsilon``."""

    def epsilon_of(sigma: float) -> float:
        return accountant.epsilon([Release("dp-sgd", sigma, sample_rate, steps)])[0]

    return bisect_sigma(epsilon_of, epsilon)
