"""Deleting an account and everything its person made: the flow above every domain it empties."""
