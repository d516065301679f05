"""Analytic tasks (pendulum, cart-pole, linear systems) with differentiable torch dynamics."""
