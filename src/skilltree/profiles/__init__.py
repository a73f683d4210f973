"""Learner profiles: public handle, time zone and the privacy and sharing settings."""
