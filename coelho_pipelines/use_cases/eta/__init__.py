"""eta: estimated time of arrival (regression, primary metric MAE).

`spec` (the SPEC), `vocabulary` (what spec and generator share), `generator` (its events).
"""

from coelho_pipelines.use_cases.eta.spec import SPEC

__all__ = ["SPEC"]
