"""Vendor-compatible REST APIs over the one conference model (README "Telnyx API", "FreeClimb API").

Each vendor has its own package: pure modules for its request validation and response shapes,
and an ``adapters`` package with the aiohttp routes, added to the HTTP app through
``build_http_app(..., extra_routes=[...])`` under the vendor's own base path.
"""
