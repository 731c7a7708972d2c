"""Event-driven re-screening: keep each patient's profile, re-screen on every event, report changes."""

from .events import Event, parse_event
from .watcher import Watcher, bounded_lines

__all__ = ["Event", "Watcher", "bounded_lines", "parse_event"]
