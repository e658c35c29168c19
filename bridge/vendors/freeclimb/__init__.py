"""FreeClimb's conference API: shapes (``views``), request checks (``validation``); I/O in ``adapters``."""
