"""ecci: e-commerce customer interactions (clustering, primary metric silhouette).

`spec` (the SPEC), `vocabulary` (what spec and generator share), `generator` (its events).
"""

from coelho_pipelines.use_cases.ecci.spec import SPEC

__all__ = ["SPEC"]
