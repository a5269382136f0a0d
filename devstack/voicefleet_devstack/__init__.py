"""voicefleet's development stack: the local control plane with a real node and KWOK, LiveKit,
Prometheus, Jaeger, the image builder and the demo, as plain processes on this machine.

Development tooling only: the test fixtures, the benchmarks and `make demo` use it, so all three
run exactly the same parts. It is not part of the wheel and never in an image.
"""
