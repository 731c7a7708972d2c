"""The patient profile: what is known about one candidate patient."""
