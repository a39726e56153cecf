"""Stage 6, making a model (torch): the network, the training loop, runs with checkpoints, torchrun, compress and tune."""
