"""The call core and its pieces: legs, the lobby, live conferences (all sans-IO)."""
