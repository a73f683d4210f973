"""Roadmaps: trees of topics, the built-in backend roadmap, import and export."""
