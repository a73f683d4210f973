"""Spaced repetition: review cards for done topics, scheduled by FSRS."""
