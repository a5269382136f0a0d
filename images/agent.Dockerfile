# The voicefleet agent worker: LiveKit Agents with Silero VAD (the model is in the
# livekit-plugins-silero wheel), cloud providers (Deepgram, Gemini, OpenAI-compatible) and the
# keyless offline ones (PocketSphinx, espeak-ng). Build from the repository root:
#   docker build -f images/agent.Dockerfile -t voicefleet-agent:0.1.0 .
# The base is pinned by tag; pin its digest too (PYTHON_IMAGE=python:3.11-slim-bookworm@sha256:…)
# for byte-for-byte rebuilds.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
# Dependencies first, from the pins alone: a change to voicefleet's sources reuses this layer.
COPY constraints.txt ./
COPY images/install.sh images/agent-requirements.txt images/
RUN sh images/install.sh dependencies agent /opt/voicefleet
# Only what the package needs (.dockerignore keeps the rest out of the context anyway).
COPY pyproject.toml README.md ./
COPY models/voicefleet_models/ models/voicefleet_models/
COPY operator/voicefleet_operator/ operator/voicefleet_operator/
COPY agent/voicefleet_agent/ agent/voicefleet_agent/
COPY dashboards/voicefleet_dashboards/ dashboards/voicefleet_dashboards/
RUN sh images/install.sh voicefleet agent /opt/voicefleet

FROM ${PYTHON_IMAGE}
# espeak-ng speaks for the offline TTS provider; Debian bookworm's build, nothing recommended.
RUN apt-get update \
    && apt-get install -y --no-install-recommends espeak-ng \
    && rm -rf /var/lib/apt/lists/*
RUN groupadd --gid 65532 voicefleet \
    && useradd --uid 65532 --gid 65532 --no-create-home --home-dir /tmp \
       --shell /usr/sbin/nologin voicefleet
COPY --from=build /opt/voicefleet /opt/voicefleet
# Read-only root filesystem in the cluster: caches and the metrics directory go to /tmp, the
# pod's emptyDir. Provider keys arrive as environment variables from Secrets at run time.
ENV PATH=/opt/voicefleet/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp
USER 65532:65532
EXPOSE 9100
ENTRYPOINT ["voicefleet-agent"]
CMD ["start"]
