"""Notifications: the e-mails skilltree sends (Jinja2 templates, HTML and text), people's
preferences about the optional ones, one-click unsubscribe, and the digest and reminder jobs."""
