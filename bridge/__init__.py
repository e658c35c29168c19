"""tutti-bridge: an audio conference bridge."""

import os

# The media tick's matrix products (16/48 kHz rooms resample G.711 rows with one product) are
# small: OpenBLAS worker threads only spin and steal the other core. Set before numpy loads.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
