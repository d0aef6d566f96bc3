"""Generic features (`cam-features`, Zhou et al. 2016 Section 4): the config (config.py), feature
vectors of a batch (extract.py), the caches (cache.py), the linear classifier (linear.py), the
run over a dataset's splits (run.py) and what its metrics.json holds, for readers (outputs.py).

A stage beside train and evaluate; it builds on evaluate (the network loading and the maps and
boxes of a batch), never on train.
"""
