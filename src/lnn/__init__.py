"""lnn: liquid neural networks that act on screenshots."""

__version__ = "0.1.0"
