"""Privacy by design: pseudonyms, secrets, encrypted reply routes, redaction, log scrubbing.

Promise 1 of the architecture (no identifying details at rest) is kept by the pieces here:

- ``keys``: the deployment secrets (HMAC key, encryption keys), from the environment or a
  0600 secrets file created on first run; rotation of the encryption key.
- ``pseudonyms``: provider address -> conversation id (HMAC-SHA256).
- ``routes``: the encrypted, expiring reply-route cache (memory or Redis).
- ``redaction``: what of each Rasa event may be written.
- ``erasure``: erasing everything keyed by a conversation id, at once.
- ``logs``: the log scrubber installed in every process.
"""
