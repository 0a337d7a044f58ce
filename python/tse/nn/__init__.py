"""Neural-network building blocks; ``tse.nn.functional`` holds the functional forms."""

from . import functional

__all__ = ["functional"]
