"""Stage 4, the trained model without torch: features, the scoring head, the bundle on disk, inference, metrics and the run directory's names."""
