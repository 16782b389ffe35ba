"""tfd: transaction fraud detection (binary classification, primary metric FBeta with beta=2).

`spec` (the SPEC), `vocabulary` (what spec and generator share), `generator` (its events).
"""

from coelho_pipelines.use_cases.tfd.spec import SPEC

__all__ = ["SPEC"]
