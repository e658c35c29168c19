"""Events leave the bridge: Telnyx-form webhooks and FreeClimb status callbacks, durably.

The modules directly in this package are pure (no sockets, threads, clocks or event loop):
``urls`` (SSRF rules), ``backoff`` (retry schedule), ``signing`` (Ed25519 and HMAC headers),
``envelopes`` (vendor bodies), ``freeclimb_status`` (the conferenceStatus transitions),
``routing`` (which event goes where, in which form) and ``lanes`` (ordering, concurrency and
dead-lettering of deliveries). ``adapters`` holds the I/O: the SQLite outbox, the aiohttp
sender, the dispatcher task, the key files, the REST routes and ``start_webhooks``.
"""
