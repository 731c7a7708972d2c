"""Facts about a patient at a screening date: raw (labs, age) and derived (Child-Pugh, MELD)."""
