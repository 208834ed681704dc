"""Adapters from cells to Gymnasium spaces and stable-baselines3 policies."""
