#!/bin/sh
# Install one voicefleet component into a new virtual environment, from a build context that
# holds pyproject.toml, README.md, constraints.txt, the packages and images/. The image builds
# run it (images/*.Dockerfile) and so does tests/delivery/test_images.py, so what the test
# proves is what the image gets.
#
#   images/install.sh operator|agent VENV     (from the root of the build context)
#
# pip reads its index settings from the environment (PIP_INDEX_URL, PIP_NO_INDEX,
# PIP_FIND_LINKS), so a mirror or a local wheelhouse needs no change here.
set -eu

component="$1"
venv="$2"
requirements="images/$component-requirements.txt"
[ -f "$requirements" ] || { echo "install.sh: unknown component '$component'" >&2; exit 2; }

python -m venv "$venv"
pip="$venv/bin/pip"
export PIP_DISABLE_PIP_VERSION_CHECK=1
# One component's dependencies, at exactly the versions the test suite ran on: the operator
# image does not carry the speech stack, nor the agent image kopf and the Kubernetes client.
"$pip" install --no-cache-dir --constraint constraints.txt --requirement "$requirements"
# voicefleet itself, built from these sources. Its metadata declares every component's
# dependencies, hence no dependency resolution and no conflict warning here.
"$pip" install --no-cache-dir --no-deps --no-warn-conflicts .
"$venv/bin/python" -c "import voicefleet_$component"
