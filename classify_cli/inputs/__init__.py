"""Stage 1, reading: where labeled text comes from (files, directories, the Hub) and its formats (CSV, JSON lines, Parquet, lines)."""
