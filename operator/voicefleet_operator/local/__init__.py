"""Real servers on this machine: the local control plane, LiveKit and Prometheus.

Used by `voicefleet demo` and by the test fixtures, so both run exactly the same parts.
"""
