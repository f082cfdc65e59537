"""Search over stored token vectors: exact MaxSim (`exact.py`)."""
