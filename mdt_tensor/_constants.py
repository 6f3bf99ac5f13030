"""Units the whole package shares: the chain's u16 scale and the wei per token.

One definition each; every module imports them from here.
"""

from __future__ import annotations

__all__ = ["U16_MAX", "WEI_PER_MDT"]

#: The largest u16 value: the chain's scale for weights, bonds, kappa, trust and incentive.
U16_MAX = 65535

#: wei per MDT (and rao per TAO): 1 MDT = 10**9 wei.
WEI_PER_MDT = 10**9
