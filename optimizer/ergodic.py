"""Rates the planner can count on when the channel it plans for is not one number.

A transfer that lasts many coherence blocks sees the fading average out: its rate is the ergodic
rate E[b·log2(1 + (c/b)·|h|^2)] over the fading distribution (Goldsmith, *Wireless
Communications*, 2005, Sec. 4.2.4). For Rayleigh fading (|h|^2 ~ Exp(1)) it has the closed form

    r_erg(b, c) = (b / ln 2) · e^{1/x} · E1(1/x),   x = c / b

(Goldsmith eq. 4.12 with the exponential pdf; E1 the exponential integral). For Rician fading the
expectation is a midpoint rule on 512 quantiles of |h|^2 (noncentral chi-square, 2 degrees of
freedom), within 3e-4 relative (the tail beyond the last quantile is cut).

Over slower changes (the user walks, its shadowing moves) the planner averages time, not rate:
a user's expected seconds per bit is the mean of 1/r over the positions it will be at, so the
rate that gives its expected delay is the harmonic mean (`planning_rate_bps`).

`effective_snr_coeff_hz` turns any such rate back into the c = g·p/N0 that gives it through the
Shannon formula at the same bandwidth, so the structured solver of problem (17), written for
Shannon rates, plans on it unchanged (a fixed point over b: optimizer.replan).
"""

from __future__ import annotations

import functools
import math

import numpy as np
from scipy import special, stats

from splitsim.scenarios.types import LN2, SHANNON, fdma_rate_bps

__all__ = ["ergodic_rate_bps", "planning_rate_bps", "effective_snr_coeff_hz", "fading_quantiles"]

_QUANTILES = 512
# Quantiles of |h|^2 over which a link model other than Shannon's (the NR link's tables) is averaged.
LINK_QUANTILES = 64
_EXP1_SWITCH = 600.0  # above this 1/x, e^{1/x}·E1(1/x) by its asymptotic series (e^{600} is near overflow)


def fading_quantiles(fading: str, k_factor_db: float = 6.0, n: int = _QUANTILES) -> np.ndarray:
    """|h|^2 at the midpoints (i + 1/2)/n of its distribution (mean ~1): a deterministic quadrature."""
    p = (np.arange(n) + 0.5) / n
    if fading == "rayleigh":
        return -np.log1p(-p)
    if fading == "rician":
        k = 10.0 ** (k_factor_db / 10.0)
        # |h|^2 = (1/(2(K+1)))·chi'^2(2, 2K): sqrt(K/(K+1)) LOS plus CN(0, 1/(K+1)) scatter
        return stats.ncx2.ppf(p, df=2, nc=2.0 * k) / (2.0 * (k + 1.0))
    return np.ones(1)


@functools.lru_cache(maxsize=8)
def _link_quantiles(fading: str, k_factor_db: float) -> np.ndarray:
    """fading_quantiles at LINK_QUANTILES points, computed once per fading (read-only)."""
    out = fading_quantiles(fading, k_factor_db, LINK_QUANTILES)
    out.setflags(write=False)
    return out


def _scaled_exp1(z: np.ndarray) -> np.ndarray:
    """e^z·E1(z) for z > 0, without overflow."""
    out = np.empty_like(z)
    small = z <= _EXP1_SWITCH
    out[small] = np.exp(z[small]) * special.exp1(z[small])
    big = z[~small]
    out[~small] = (1.0 - 1.0 / big + 2.0 / big**2 - 6.0 / big**3) / big
    return out


def ergodic_rate_bps(bandwidth_hz: np.ndarray, snr_coeff_hz: np.ndarray, fading: str,
                     k_factor_db: float = 6.0, link=None) -> np.ndarray:
    """E over the fading of b·log2(1 + c·|h|^2/b) (bit/s); shapes broadcast. 'none': the Shannon rate.
    With `link` (a link model other than Shannon's, e.g. scenarios.nr_link.NrRate): its rate averaged
    over LINK_QUANTILES quantiles of the fading (NrRate.faded)."""
    b = np.asarray(bandwidth_hz, dtype=float)
    c = np.asarray(snr_coeff_hz, dtype=float)
    if link is not None and link != SHANNON:
        if fading == "none":
            return link.rate_bps(b, c)
        return link.faded(f"{fading}:{k_factor_db:g}", _link_quantiles(fading, float(k_factor_db))).rate_bps(b, c)
    if fading == "none":
        return fdma_rate_bps(b, c)
    if fading == "rayleigh":
        b, c = np.broadcast_arrays(b, c)
        z = np.asarray(b / c, dtype=float).copy()
        return b * _scaled_exp1(z.ravel()).reshape(z.shape) / LN2
    h2 = fading_quantiles(fading, k_factor_db)
    return np.mean(fdma_rate_bps(b[..., None], c[..., None] * h2), axis=-1)


def planning_rate_bps(bandwidth_hz: np.ndarray, snr_coeff_samples_hz: np.ndarray, fading: str,
                      k_factor_db: float = 6.0, link=None) -> np.ndarray:
    """The rate (K,) that gives each user its expected seconds per bit over its samples of c
    (K, S): the harmonic mean over samples of the ergodic rate at bandwidth (K,) (0 where a sample
    delivers nothing: that user's expected time is infinite)."""
    b = np.asarray(bandwidth_hz, dtype=float)
    c = np.asarray(snr_coeff_samples_hz, dtype=float)
    if c.ndim == 1:
        return ergodic_rate_bps(b, c, fading, k_factor_db, link)
    rate = ergodic_rate_bps(b[:, None], c, fading, k_factor_db, link)
    with np.errstate(divide="ignore"):
        return 1.0 / np.mean(1.0 / rate, axis=1)


def effective_snr_coeff_hz(bandwidth_hz: np.ndarray, rate_bps: np.ndarray) -> np.ndarray:
    """The c with b·log2(1 + c/b) = rate: c = b·(2^{rate/b} - 1) (Hz)."""
    b = np.asarray(bandwidth_hz, dtype=float)
    return b * np.expm1(np.asarray(rate_bps, dtype=float) * math.log(2.0) / b)
