"""A classifier's decision threshold, chosen online from past predictions only.

`ThresholdTuner` keeps the last `window` (probability, label) pairs as counts in `bins`
equal-width probability bins, and every `every` recorded pairs picks the bin edge k/bins that
maximises F-beta over them (predict positive when probability >= threshold). The learner asks
`decide(p)` for an event before it `record`s that event's label, so the threshold in force
for an event never depends on that event's label. Until `min_positives` positives were seen
the threshold stays at `initial` (0.5, River's argmax for a binary classifier).
"""

from __future__ import annotations

from collections import deque

DEFAULT_WINDOW = 5000
DEFAULT_BINS = 100
DEFAULT_EVERY = 100
DEFAULT_MIN_POSITIVES = 10


def fbeta(tp: float, fp: float, fn: float, beta: float) -> float:
    """F-beta from counts (0 when undefined)."""
    b2 = beta * beta
    denominator = (1 + b2) * tp + b2 * fn + fp
    return (1 + b2) * tp / denominator if denominator else 0.0


class ThresholdTuner:
    """The F-beta-maximising threshold over a sliding window of past predictions."""

    def __init__(
        self,
        beta: float = 2.0,
        window: int = DEFAULT_WINDOW,
        bins: int = DEFAULT_BINS,
        every: int = DEFAULT_EVERY,
        min_positives: int = DEFAULT_MIN_POSITIVES,
        initial: float = 0.5,
    ) -> None:
        if window < 1 or bins < 2 or every < 1:
            raise ValueError("window, every must be >= 1 and bins >= 2")
        self.beta = beta
        self.window = window
        self.bins = bins
        self.every = every
        self.min_positives = min_positives
        self.value = initial
        self.recomputed = 0  # how many times the threshold was chosen
        self._positives = [0] * bins
        self._negatives = [0] * bins
        self._pairs: deque[int] = deque()  # bin index, + bins for a positive
        self._since = 0

    def decide(self, probability: float) -> int:
        """1 (positive) when `probability` reaches the threshold in force, else 0."""
        return int(probability >= self.value)

    def _bin(self, probability: float) -> int:
        if not probability > 0.0:  # also NaN
            return 0
        return min(int(probability * self.bins), self.bins - 1)

    def record(self, probability: float, positive: bool) -> None:
        """Remember one scored event's probability and true label (after `decide`)."""
        b = self._bin(probability)
        if positive:
            self._positives[b] += 1
            self._pairs.append(b + self.bins)
        else:
            self._negatives[b] += 1
            self._pairs.append(b)
        if len(self._pairs) > self.window:
            old = self._pairs.popleft()
            if old >= self.bins:
                self._positives[old - self.bins] -= 1
            else:
                self._negatives[old] -= 1
        self._since += 1
        if self._since >= self.every:
            self._since = 0
            self._choose()

    def _choose(self) -> None:
        total_positives = sum(self._positives)
        if total_positives < self.min_positives:
            return
        tp, fp = float(total_positives), float(sum(self._negatives))
        best_k, best = 1, -1.0
        for k in range(self.bins):  # threshold k / bins: bins k.. predicted positive
            if k > 0:
                score = fbeta(tp, fp, total_positives - tp, self.beta)
                if score > best:
                    best_k, best = k, score
            tp -= self._positives[k]
            fp -= self._negatives[k]
        self.value = best_k / self.bins
        self.recomputed += 1

    @property
    def pairs(self) -> int:
        """How many past predictions the window holds."""
        return len(self._pairs)
