"""Evaluators of the one rule model. ``explain`` is the reference semantics."""
