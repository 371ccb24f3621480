"""``--ymir-fuzz``: hypothesis searches the input space (image modes, sizes, EXIF, boxes, class names) against the
real container and shrinks a failure to a minimal reproducer (issue 20).

* :mod:`.case`: the input as pure data (:class:`FuzzCase`), its words and its coverage;
* :mod:`.strategies`: hypothesis strategies over inputs the platform can send (docs/fuzz-inputs.md);
* :mod:`.render`: a case as asset bytes and as a workspace, deterministic, and the /in digest;
* :mod:`.search`: the searches, their budget, the reproducer.
"""
from __future__ import annotations

from .case import CANDIDATES, SEARCHES, TRAINING, FuzzBox, FuzzCase, FuzzImage

__all__ = ["CANDIDATES", "SEARCHES", "TRAINING", "FuzzBox", "FuzzCase", "FuzzImage"]
