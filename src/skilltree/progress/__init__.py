"""Learner progress: an append-only event log, its read-model projection, notes and summaries."""
