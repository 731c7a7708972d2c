"""The rule model: trials, criteria, rule expressions and code lists, loaded from data files."""
