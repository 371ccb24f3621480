"""ymir-conformance: the conformance and certification suite (a pytest plugin) for YMIR executor images."""
from __future__ import annotations

__version__ = "0.1.0"
