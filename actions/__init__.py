"""Rasa SDK actions: thin adapters from a conversation tracker to the ``bot`` core.

The action server imports every module here; none does I/O at import time.
"""

from bot.privacy.logs import install_log_scrubber

# Every log record of the action server (rasa_sdk's, Sanic's, ours) is scrubbed of message
# text, addresses and identifier-shaped strings. No I/O: this only wraps the record factory.
install_log_scrubber()
