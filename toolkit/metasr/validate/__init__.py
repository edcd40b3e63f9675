"""Validation: parity against the float reference, placement coverage, quality metrics."""
