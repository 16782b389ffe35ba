"""River models of our own, built by the use cases' model factories and learned by the live
learner: `OnlineKMeans` (ecci) and `PerUnitRegressor` (eta's pace tree).

Each module imports River at its top, so the factories import them lazily.
"""
