"""Presentation: drawing (draw.py), cam-visualize's figures (figures.py), cam-report's tables
(tables.py)."""
