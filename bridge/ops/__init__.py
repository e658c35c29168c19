"""Operations adapters: metrics, health, logs, live config reload."""
