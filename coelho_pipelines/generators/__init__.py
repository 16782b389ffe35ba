"""Seeded synthetic event streams, one generator per use case (see `UseCaseSpec.generator`)."""

from coelho_pipelines.generators.interactions import InteractionGenerator
from coelho_pipelines.generators.transactions import TransactionGenerator
from coelho_pipelines.generators.trips import TripGenerator

__all__ = ["InteractionGenerator", "TransactionGenerator", "TripGenerator"]
