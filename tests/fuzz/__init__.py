"""Fuzz targets: bounded hypothesis runs here, long coverage-guided runs via scripts/fuzz.py.

``targets.py`` holds the checks both share (one per parser plus the RTP session); the
``test_*`` modules drive them with hypothesis and hold the strict-xfail regression tests for
failures found in code the fuzzing work does not own. ``TUTTI_FUZZ_SCALE=10`` multiplies every
``max_examples`` for a longer hypothesis run.
"""
