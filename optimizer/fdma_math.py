"""Time and bandwidth of an FDMA transfer, parameterised by the sub-band SNR x = c / b.

Sending S bits over a sub-band b with c = g·p/N0 takes

    t = S / (b·log2(1 + c/b)) = t_min · phi(x),   x = c/b,   phi(x) = x / ln(1 + x),

where t_min = S·ln2 / c is the wideband limit (b -> inf, x -> 0, phi -> 1). phi increases from 1
to infinity, so every time t > t_min has exactly one bandwidth b = c / phi^{-1}(t / t_min), and
phi^{-1} is a closed form with the lower branch of the Lambert W function:

    x = -y·W_{-1}(-e^{-1/y} / y) - 1,   y = t / t_min.

The structured solver works in log x and needs phi, phi' and phi''; these are evaluated with
series near x = 0, where the closed forms cancel catastrophically.
"""

from __future__ import annotations

import numpy as np
from scipy.special import lambertw

from splitsim.scenarios.types import LN2

_SMALL = 1e-3  # below this x the series are used


def phi(x: np.ndarray) -> np.ndarray:
    """phi(x) = x / ln(1 + x); phi(0) = 1."""
    return phi_derivatives(x)[0]


def phi_derivatives(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(phi, phi', phi'') at x >= 0, elementwise (series below x = 1e-3)."""
    x = np.array(x, dtype=float, ndmin=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        lg = np.log1p(x)
        inv = 1.0 / (1.0 + x)
        num = lg - x * inv  # ln(1+x) - x/(1+x) > 0
        inv_lg = 1.0 / lg
        f = x * inv_lg
        d1 = num * inv_lg * inv_lg
        d2 = (x * inv * inv * lg - 2.0 * num * inv) * inv_lg**3
    small = x < _SMALL
    if small.any():
        xs = x[small]
        f[small] = 1.0 + xs / 2 - xs**2 / 12 + xs**3 / 24 - 19 * xs**4 / 720
        d1[small] = 0.5 - xs / 6 + xs**2 / 8 - 19 * xs**3 / 180
        d2[small] = -1.0 / 6 + xs / 4 - 19 * xs**2 / 60
    return f, d1, d2


def phi_inverse(y: np.ndarray) -> np.ndarray:
    """x >= 0 with phi(x) = y, for y >= 1 (Lambert W closed form, polished by two Newton steps)."""
    y = np.asarray(y, dtype=float)
    y1 = np.maximum(y, 1.0)
    with np.errstate(over="ignore", invalid="ignore"):
        w = lambertw(-np.exp(-1.0 / y1) / y1, k=-1).real
        x = -y1 * w - 1.0
    # near y = 1 the branch point loses digits: phi(x) ~ 1 + x/2 there
    x = np.where((y1 - 1.0) < 1e-6, 2.0 * (y1 - 1.0), x)
    x = np.where(np.isfinite(x), np.maximum(x, 0.0), 2.0 * (y1 - 1.0))
    for _ in range(2):
        f, d1, _ = phi_derivatives(x)
        x = np.maximum(x - (f - y1) / d1, 0.0)
    return x


def wideband_time_s(bits: float, snr_coeff_hz: np.ndarray) -> np.ndarray:
    """t_min = S·ln2 / c: the time to send `bits` with unlimited bandwidth."""
    return bits * LN2 / np.asarray(snr_coeff_hz, dtype=float)


def bandwidth_for_time_hz(bits: float, time_s: np.ndarray, snr_coeff_hz: np.ndarray) -> np.ndarray:
    """The bandwidth b that sends `bits` in exactly `time_s` (inf when time_s <= t_min)."""
    c = np.asarray(snr_coeff_hz, dtype=float)
    y = np.asarray(time_s, dtype=float) / wideband_time_s(bits, c)
    x = phi_inverse(y)
    with np.errstate(divide="ignore"):
        return np.where(y > 1.0, c / x, np.inf)
