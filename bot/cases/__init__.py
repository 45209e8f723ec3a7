"""Hand-off to human caseworkers: cases, their queue, their encrypted transcripts, the audit log."""
