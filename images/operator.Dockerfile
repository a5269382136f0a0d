# The voicefleet operator. Build from the repository root:
#   docker build -f images/operator.Dockerfile -t voicefleet-operator:0.1.0 .
# The base is pinned by tag; pin its digest too (PYTHON_IMAGE=python:3.11-slim-bookworm@sha256:…)
# for byte-for-byte rebuilds.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
# Dependencies first, from the pins alone: a change to voicefleet's sources reuses this layer.
COPY constraints.txt ./
COPY images/install.sh images/operator-requirements.txt images/
RUN sh images/install.sh dependencies operator /opt/voicefleet
# Only what the package needs (.dockerignore keeps the rest out of the context anyway).
COPY pyproject.toml README.md ./
COPY models/voicefleet_models/ models/voicefleet_models/
COPY operator/voicefleet_operator/ operator/voicefleet_operator/
COPY agent/voicefleet_agent/ agent/voicefleet_agent/
COPY dashboards/voicefleet_dashboards/ dashboards/voicefleet_dashboards/
RUN sh images/install.sh voicefleet operator /opt/voicefleet

FROM ${PYTHON_IMAGE}
# A named user for libraries that look up the current user; the IDs match the chart's
# securityContext (65532, as distroless "nonroot").
RUN groupadd --gid 65532 voicefleet \
    && useradd --uid 65532 --gid 65532 --no-create-home --home-dir /tmp \
       --shell /usr/sbin/nologin voicefleet
# Same base, same interpreter path: the virtual environment works as copied.
COPY --from=build /opt/voicefleet /opt/voicefleet
# The root filesystem is read-only in the cluster; /tmp is the pod's writable emptyDir.
ENV PATH=/opt/voicefleet/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["voicefleet-operator"]
