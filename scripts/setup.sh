#!/usr/bin/env bash
# Installs everything voicefleet's demo and tests run on, pinned, into a per-user cache that
# later runs and clean clones reuse. Idempotent: a step whose pinned result is present is skipped.
# Prints each step with how long it took.
#
#   scripts/setup.sh            everything
#   scripts/setup.sh python go  only some groups (python go system deno frontend)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${VOICEFLEET_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/voicefleet}
BIN=$CACHE/bin
mkdir -p "$BIN"

# Pinned versions. The Kubernetes and etcd pins live in tools/*/go.mod.
KUBERNETES_VERSION=v1.36.3
ETCD_VERSION=v3.6.16
KWOK_VERSION=v0.8.0
HELM_VERSION=v3.19.5
LIVEKIT_VERSION=v1.13.5
DENO_VERSION=2.9.6
APT_PACKAGES=(prometheus chromium espeak-ng sox fonts-liberation
  # The images (`make images`) and the real node that runs them.
  buildah mmdebstrap containerd runc containernetworking-plugins iptables)

step() {
  local name=$1 start=$SECONDS
  shift
  printf '==> %s\n' "$name"
  "$@"
  printf '    %s: %ss\n' "$name" $((SECONDS - start))
}

# Runs a build only when the stamp beside the binary names another version.
stamped() {
  local stamp=$BIN/.$1.version version=$2
  shift 2
  if [[ -f $stamp && $(cat "$stamp") == "$version" ]]; then
    echo "    cached ($version)"
    return
  fi
  "$@"
  echo "$version" >"$stamp"
}

build_kubernetes() {
  local v=k8s.io/component-base/version
  (cd "$ROOT/tools/k8s" && go build -trimpath -ldflags "-s -w \
      -X $v.gitVersion=$KUBERNETES_VERSION -X $v.gitMajor=1 -X $v.gitMinor=36 \
      -X k8s.io/client-go/pkg/version.gitVersion=$KUBERNETES_VERSION" \
    -o "$BIN/" k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl k8s.io/kubernetes/cmd/kubelet)
}

build_etcd() {
  (cd "$ROOT/tools/etcd" && go build -trimpath -ldflags "-s -w" -o "$BIN/etcd" go.etcd.io/etcd/server/v3)
}

# Jaeger's pin lives in tools/jaeger/go.mod, like the Kubernetes and etcd pins.
build_jaeger() {
  (cd "$ROOT/tools/jaeger" && go build -trimpath -ldflags "-s -w" -o "$BIN/jaeger" \
    github.com/jaegertracing/jaeger/cmd/jaeger)
}

go_install() { # module/cmd@version binary-name
  local gobin=$CACHE/gobin
  GOBIN=$gobin go install -trimpath -ldflags "-s -w" "$1"
  mv "$gobin/$(basename "${1%@*}")" "$BIN/$2"
}

install_go_tools() {
  step "kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, kubelet $KUBERNETES_VERSION" \
    stamped kubernetes "$KUBERNETES_VERSION-$(sha256sum "$ROOT/tools/k8s/go.sum" | cut -c1-12)" build_kubernetes
  step "etcd $ETCD_VERSION" stamped etcd "$ETCD_VERSION" build_etcd
  local jaeger
  jaeger=$(cd "$ROOT/tools/jaeger" && go list -m -f '{{.Version}}' github.com/jaegertracing/jaeger)
  step "jaeger $jaeger" stamped jaeger "$jaeger" build_jaeger
  step "kwok $KWOK_VERSION" stamped kwok "$KWOK_VERSION" go_install "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" kwok
  step "helm $HELM_VERSION" stamped helm "$HELM_VERSION" go_install "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" helm
  step "livekit-server $LIVEKIT_VERSION" stamped livekit-server "$LIVEKIT_VERSION" \
    go_install "github.com/livekit/livekit-server/cmd/server@$LIVEKIT_VERSION" livekit-server
}

install_system() {
  local missing=()
  for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
  done
  if ((${#missing[@]} == 0)); then
    echo "    present: ${APT_PACKAGES[*]}"
    return
  fi
  local sudo=""
  [[ $(id -u) == 0 ]] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

install_deno() {
  local dir=$CACHE/deno-$DENO_VERSION
  npm install --prefix "$dir" --no-audit --no-fund --silent "deno@$DENO_VERSION"
  ln -sf "$dir/node_modules/.bin/deno" "$BIN/deno"
}

# One virtual environment per dependency set, shared by every clone; the project itself is
# installed editable from this clone on each run (a second or two).
install_python() {
  local key venv
  key=$(cat "$ROOT/pyproject.toml" "$ROOT/constraints.txt" | sha256sum | cut -c1-12)
  venv=$CACHE/venv-$key
  # Built in place (scripts record their interpreter's path); `.complete` marks success.
  if [[ ! -f $venv/.complete ]]; then
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --upgrade pip
    "$venv/bin/pip" install -q -c "$ROOT/constraints.txt" -e "$ROOT[dev]"
  fi
  touch "$venv/.complete" # marks it as in use
  # Environments of other dependency sets unused for a day only take disk space.
  find "$CACHE" -maxdepth 2 -path "$CACHE/venv-*/.complete" -mmin +1440 -printf '%h\n' |
    xargs -r rm -rf
  # This clone's entry points; the build backend's chatter goes to a log, shown on failure.
  "$venv/bin/pip" install -q --no-deps --no-build-isolation -e "$ROOT" >"$CACHE/editable.log" 2>&1 ||
    { cat "$CACHE/editable.log"; return 1; }
  ln -sfn "$venv" "$ROOT/.venv"
}

install_frontend() {
  local lock=$ROOT/frontend/package-lock.json stamp=$ROOT/frontend/node_modules/.voicefleet-lock
  [[ -f $lock ]] || { echo "    no frontend/package-lock.json"; return; }
  if [[ -f $stamp ]] && cmp -s "$lock" "$stamp"; then
    echo "    node_modules match package-lock.json"
    return
  fi
  (cd "$ROOT/frontend" && npm ci --no-audit --no-fund --silent)
  cp "$lock" "$stamp"
}

main() {
  local total=$SECONDS groups=("$@")
  ((${#groups[@]})) || groups=(system python go deno frontend)
  echo "voicefleet setup: cache $CACHE"
  for group in "${groups[@]}"; do
    case $group in
      system) step "Debian packages (${APT_PACKAGES[*]})" install_system ;;
      python) step "Python environment" install_python ;;
      go) install_go_tools ;;
      deno) step "deno $DENO_VERSION" stamped deno "$DENO_VERSION" install_deno ;;
      frontend) step "frontend dependencies (npm ci)" install_frontend ;;
      *) echo "unknown group '$group' (choose from: system python go deno frontend)" >&2; exit 2 ;;
    esac
  done
  echo "voicefleet setup: done in $((SECONDS - total))s"
}

main "$@"
