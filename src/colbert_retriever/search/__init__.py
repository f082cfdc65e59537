"""Search over stored token vectors: exact MaxSim (`exact.py`); residual compression
(`codec.py`) and PLAID's stages over it (`plaid.py`); `dispatch.py` picks one per index and
turns what it finds into hits."""
