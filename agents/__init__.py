"""Training and evaluation: imitation (BC, DAgger), PPO, experts, evaluation loops."""
