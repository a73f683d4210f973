"""Server-sent event streams: an organisation's live feed and each person's notifications."""
