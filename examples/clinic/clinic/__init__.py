"""A clinic's receptionist: a custom agent for a voicefleet worker image."""
