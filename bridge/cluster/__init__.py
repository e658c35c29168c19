"""Cluster mode: several bridge nodes sharing state in Redis (README "Running several nodes").

Only ``settings`` is imported by the configuration; the rest is imported by the app when
``cluster.enabled`` is true, so single-process mode never loads the Redis client.
"""
