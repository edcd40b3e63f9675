"""Datasets: image folders with random crops, and the real photographs shipped by scikit-image."""
