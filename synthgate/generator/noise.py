"""The one source of randomness behind every DP guarantee: fresh operating-system entropy.

A DP mechanism protects a record only while its noise is unknown. Noise derived from a
seed the spec holds (``training.seed``, logged to MLflow) can be replayed by anyone who
knows the seed, and two refreshes would publish the same noise, which removes it. So every
draw a guarantee rests on comes from :class:`SecureNoise`, seeded from ``secrets`` (the
operating system's CSPRNG) afresh for each fit, and never stored, logged or returned:

* the Gaussian releases before training (row count, range, zoom and bin histograms, category
  counts), through :meth:`PrivacyAccountant.gaussian`, which takes no seed;
* the Poisson sampling mask of DP-SGD, and which rows of a large privacy unit train (:mod:`units`);
* the DP-SGD noise, in both engines (``fast``: :class:`~synthgate.generator.dpsgd.DPSGD`;
  ``opacus``: passed to ``PrivacyEngine.make_private(noise_generator=...)``, which Opacus 1.6
  hands to its ``DPOptimizer`` and uses for every ``torch.normal`` of ``add_noise``).

``training.seed`` keeps only what needs no secrecy: the model's initial weights, sampling
synthetic rows from a trained model, fake values.

What remains (for the README):

* Floating point (Mironov 2012): the low-order bits of floating-point noise can reveal the
  value it was added to. Preprocessing releases are counts: the Gaussian noise is sampled as a
  continuous float64 and every released count is rounded to an integer where it is released
  (post-processing, free under DP), which removes the low-order bits the attack reads; the
  noise is still the rounded continuous Gaussian, not an exact discrete Gaussian sampler
  (Canonne, Kamath and Steinke 2020). The DP-SGD noise is float32 ``torch.normal`` added to
  float32 gradients, as in Opacus without ``secure_mode`` (which needs torchcsprng); the
  gradients it protects are never released, only the weights after many noisy steps.
* The generators are fast statistical PRNGs (numpy's PCG64, torch's Mersenne Twister on CPU
  and Philox on CUDA) seeded with 128 and 63 bits of OS entropy; they are not CSPRNGs, so an
  attacker who saw enough raw noise could in principle recover their state. No raw noise is
  ever released (only noise added to data), and the state is drawn afresh for each fit.
"""

from __future__ import annotations

import secrets
from typing import NoReturn

import numpy as np
import torch


class SecureNoise:
    """Noise for DP mechanisms, seeded from OS entropy (``secrets``) when created; never from a spec or seed.

    Create one per fit. It takes no seed on purpose, so a seeded (replayable) generator cannot reach a
    mechanism by mistake; its state is never stored on the synthesizer, logged, or returned.
    """

    __slots__ = ("_rng",)

    def __init__(self) -> None:
        self._rng = np.random.Generator(np.random.PCG64(secrets.randbits(128)))

    def normal(self, std: float, shape: tuple[int, ...]) -> np.ndarray:
        """Gaussian noise (float64) with standard deviation ``std``."""
        return self._rng.normal(0.0, std, size=shape)

    def permutation(self, n: int) -> np.ndarray:
        """A random order of ``n`` rows (which of a privacy unit's rows train, :mod:`units`)."""
        return self._rng.permutation(n)

    def integer(self) -> int:
        """A random 63-bit integer: the seed of one fit's tie-break among a unit's equally held values
        (:func:`synthgate.generator.releases.unit_weights`), held for that fit only."""
        return int(self._rng.integers(2**63))

    @staticmethod
    def torch_generator(device: torch.device | str = "cpu") -> torch.Generator:
        """A fresh torch generator on ``device``, seeded with 63 bits of OS entropy (for DP-SGD noise and sampling)."""
        return torch.Generator(device=device).manual_seed(secrets.randbits(63))

    def __repr__(self) -> str:  # never show the state
        return "SecureNoise()"

    def __reduce__(self) -> NoReturn:  # never serialise the state (pickle, deepcopy, dask, Prefect results)
        raise TypeError("SecureNoise holds DP noise state: it cannot be pickled or copied")
