"""Recording: the mix and every participant's voice, time-aligned and crash-safe.

Pure parts here (options, the tap between the media tick and the writer, the timeline that
turns tapped frames into continuous tracks and the sidecar, the per-conference controller,
the service the REST and vendor APIs call); file writing, PyAV encoding and the worker
thread are in ``bridge.recording.adapters``.
"""
