"""Gymnasium MuJoCo v5 tasks with exact batched reward and termination functions."""
