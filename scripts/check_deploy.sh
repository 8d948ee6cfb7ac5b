#!/usr/bin/env bash
# Checks what deploys the service, with no cluster and no Docker engine:
#   - yamllint over deploy/k8s and docker-compose.yml;
#   - kubernetes-validate (PyPI) of every manifest, strictly (unknown fields refused),
#     against Kubernetes $K8S_VERSION (the ServiceMonitor, a CRD, is checked by the next
#     step instead);
#   - scripts/check_image.py: the Dockerfile's build stage replayed in a scratch folder,
#     and the image, compose file and manifests agreeing (user, port, entrypoint,
#     writable volumes, probes, drain, ConfigMap/Secret split).
# The tools are pinned, in a venv under target/. `--static` skips the replay.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/services.sh
source scripts/services.sh

K8S_VERSION=1.31.0
KUBERNETES_VALIDATE_VERSION=1.37.0
YAMLLINT_VERSION=1.38.0
venv=target/deploy-venv
if ! "$venv/bin/kubernetes-validate" --version 2>/dev/null | grep -q "$KUBERNETES_VALIDATE_VERSION" \
    || ! "$venv/bin/yamllint" --version 2>/dev/null | grep -q "$YAMLLINT_VERSION"; then
  if ! /usr/bin/python3 -m venv --help >/dev/null 2>&1 || ! /usr/bin/python3 -c 'import ensurepip' 2>/dev/null; then
    apt_install python3-venv
  fi
  rm -rf "$venv"
  /usr/bin/python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check \
    "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION" "yamllint==$YAMLLINT_VERSION"
fi

echo "==> yamllint deploy/k8s docker-compose.yml"
"$venv/bin/yamllint" --strict -d '{extends: default, rules: {line-length: {max: 120}, document-start: disable, truthy: {check-keys: false}}}' \
  deploy/k8s docker-compose.yml
echo "==> kubernetes-validate --strict (Kubernetes $K8S_VERSION)"
manifests=()
for file in deploy/k8s/*.yaml; do
  [ "$(basename "$file")" = kustomization.yaml ] || manifests+=("$file")
done
# A schema warning (the ServiceMonitor CRD) is printed; a failure exits non-zero.
"$venv/bin/kubernetes-validate" -k "$K8S_VERSION" --strict --quiet "${manifests[@]}"
echo "==> image, compose and manifests"
"$venv/bin/python" scripts/check_image.py "$@"
