"""Search over stored token vectors: exact MaxSim (`exact.py`); residual compression (`codec.py`)."""
