"""`make bench`: the Merch Store under wrk load, next to a one-SELECT baseline.

    python -m bench                 # the full run: seed, check, 3 interleaved rounds, table
    python -m bench --quick         # a smoke run: tiny seed, 2 s per scenario, 1 round
    python -m bench --help

See bench/README.md for the scenarios, the results so far and the profile notes.
"""
