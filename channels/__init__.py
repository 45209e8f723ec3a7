"""Rasa input channels. Each verifies its requests and hands Rasa a message; none logs content."""
