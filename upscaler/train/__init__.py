"""Training: patch sampling, degradations, losses, EMA and the loop (`train(TrainConfig)`)."""
