"""Clinical derivations: scores and unit conversions."""
