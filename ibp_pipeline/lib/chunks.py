"""Stable chunks of organisations for the step-5/6 fan-outs (forecasts, risk, scenarios)."""
from __future__ import annotations

import zlib
from collections.abc import Iterable

import numpy as np


def chunk_of(org_codes: Iterable[str], chunks: int) -> np.ndarray:
    """Stable chunk number of each organisation (CRC-32 of its code mod `chunks`).

    Why by organisation and by a hash: every series of one organisation lands in the same chunk whatever else is
    in the warehouse or in which order it was read, and chunks come out of similar size without a plan to keep."""
    if chunks < 1:
        raise ValueError(f"chunks must be at least 1, got {chunks}")
    return np.array([zlib.crc32(str(code).encode()) % chunks for code in org_codes], dtype=int)
