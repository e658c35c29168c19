"""Telnyx's conference API: shapes (``views``), request checks (``validation``), command_id
de-duplication (``commands``); the aiohttp routes are in ``adapters``."""
