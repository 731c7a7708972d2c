"""Renderers: format screening results; they never evaluate anything."""
