"""Search across roadmap topics, learners' notes and their resources."""
