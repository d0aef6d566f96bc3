"""Presentation: drawing (draw.py), cam-visualize's figures (figures.py), cam-report's tables
(runs.py, paper.py, stats.py, table_*.py, report.py)."""
