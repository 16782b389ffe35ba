"""The pipelines' fast paths on private library internals, each behind a `fence.Fence`.

- `fast_predict`: batch CatBoost and KMeans predictions without pandas (catboost and
  scikit-learn internals, each fenced by exact versions; every compiled predictor is checked
  against `predict_frame` on probe rows of the model it serves).
- `forest_vote`: the one ARF vote of the learner and the server (river internals).
A fence closes on `COELHO_ACCEL=0`, a library version off its allow-list or a probe that
disagrees; then the public path serves and one log line says why. This package imports no
Dagster (the server uses it), and nothing outside it (or `coelho_serving.accel`) reads a
library's private attributes.
"""
