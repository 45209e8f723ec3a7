"""The helpline's core: settings, deployment file, triage, message catalog, language detection."""
