"""What every stage runs on: errors, typed configs and choice checks, atomic files, precision,
RNG states, torchrun plumbing and the one run context."""
