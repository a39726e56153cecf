"""Plumbing every stage shares: errors and exit codes, config, crash-safe files, JSON schemas, safetensors, ragged arrays, workers, terminal text."""
