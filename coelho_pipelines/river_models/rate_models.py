"""River regressors that learn a rate: the target per unit of one feature (e.g. seconds per km).

Imported lazily by the model factories (it imports River at the top).
"""

from __future__ import annotations

from typing import Any

from river import base


class PerUnitRegressor(base.Regressor):
    """Learns `y / x[unit]` with `regressor` and predicts that rate times `x[unit]`.

    A travel time is distance x pace: trees split the pace by hour, weather and driver far
    more easily than they model the product. `x[unit]` below `min_unit` (or missing) counts
    as `min_unit`. Give it native (unscaled) features.
    """

    def __init__(self, regressor: base.Regressor, unit: str, min_unit: float = 0.05) -> None:
        self.regressor = regressor
        self.unit = unit
        self.min_unit = min_unit

    def _units(self, x: dict) -> float:
        value = x.get(self.unit)
        return self.min_unit if value is None else max(float(value), self.min_unit)

    def learn_one(self, x: dict, y: Any, **kwargs: Any) -> None:
        self.regressor.learn_one(x, y / self._units(x), **kwargs)

    def predict_one(self, x: dict, **kwargs: Any) -> float:
        rate = self.regressor.predict_one(x, **kwargs)
        return float(rate or 0.0) * self._units(x)
