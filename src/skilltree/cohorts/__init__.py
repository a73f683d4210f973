"""Cohorts: what an organisation does together — the mentors' view of members' progress,
assignments with due dates, and the activity feed."""
