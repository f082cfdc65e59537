"""Search over stored token vectors: exact MaxSim (`exact.py`); residual compression
(`codec.py`) and PLAID's stages over it (`plaid.py`), not yet wired to an index."""
