#!/bin/sh
# Install one voicefleet component into a virtual environment, in two steps so an image build
# caches the slow one: first its pinned dependencies (from constraints.txt and
# images/COMPONENT-requirements.txt only), then voicefleet itself from the sources.
#
#   images/install.sh dependencies operator|agent VENV
#   images/install.sh voicefleet   operator|agent VENV      (from the build context's root)
#
# pip reads its index settings from the environment and pip.conf (PIP_INDEX_URL,
# PIP_FIND_LINKS, a certificate store), so a mirror needs no change here.
set -eu

step="$1"
component="$2"
venv="$3"
requirements="images/$component-requirements.txt"
[ -f "$requirements" ] || { echo "install.sh: unknown component '$component'" >&2; exit 2; }
export PIP_DISABLE_PIP_VERSION_CHECK=1

case "$step" in
  dependencies)
    python -m venv "$venv"
    # One component's dependencies, at exactly the versions the test suite ran on: the operator
    # image does not carry the speech stack, nor the agent image kopf and the Kubernetes client.
    "$venv/bin/pip" install --no-cache-dir --constraint constraints.txt --requirement "$requirements"
    ;;
  voicefleet)
    # Its metadata declares every component's dependencies, hence no dependency resolution and
    # no conflict warning here.
    "$venv/bin/pip" install --no-cache-dir --no-deps --no-warn-conflicts .
    "$venv/bin/python" -c "import voicefleet_$component"
    ;;
  *) echo "install.sh: unknown step '$step' (dependencies or voicefleet)" >&2; exit 2 ;;
esac
