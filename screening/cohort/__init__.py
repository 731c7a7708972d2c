"""Cohort pre-screening: read cohorts (flat table, long EHR tables, NDJSON profiles), screen them
in chunks with the vectorized evaluator, write one result row per patient and trial."""

from .inputs import read_cohort
from .run import CohortSummary, screen_cohort

__all__ = ["CohortSummary", "read_cohort", "screen_cohort"]
