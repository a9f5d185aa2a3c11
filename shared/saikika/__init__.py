"""Saikika: event-driven label prediction for Google Cloud, with a retraining loop."""

__version__ = "0.1.0"
