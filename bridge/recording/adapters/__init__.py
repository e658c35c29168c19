"""Recording I/O: the writer thread, PyAV encoding, the catalog on disk, the HTTP routes."""
