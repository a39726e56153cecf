"""Stage 3, prepared data: a corpus tokenized, numericalized and split (train / validation / test) on disk, and folds of it."""
