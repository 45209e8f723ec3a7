"""Rasa SDK actions: thin adapters from a conversation tracker to the ``bot`` core.

The action server imports every module here; none does I/O at import time.
"""
