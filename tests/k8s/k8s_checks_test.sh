#!/usr/bin/env bash
# The Kubernetes manifests, checked without a cluster:
#   1. yamllint on k8s/;
#   2. `kubectl kustomize` renders the base and every overlay;
#   3. every rendered object validates against the Kubernetes 1.27 schemas bundled in npm
#      kubernetes-models@4, unknown fields included (validate_manifests.mjs);
#   4. the policy (policy_check.py): probes on registered health names, flags that exist,
#      grace period vs drain delay + grace, ports, resources, security, pinned images...
# and that checks 3 and 4 catch what they must (their self-tests break manifests on purpose).
# Exit 77 (skipped) when kubectl, yamllint, node or the npm tooling is missing.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
PYTHON=/usr/bin/python3
for tool in kubectl yamllint node; do
  command -v "$tool" >/dev/null || { echo "SKIP: $tool not installed" >&2; exit 77; }
done
[ -d "$REPO/node_modules/kubernetes-models" ] || {
  echo "SKIP: npm kubernetes-models missing (scripts/install-deps.sh)" >&2; exit 77; }
OUT=$(mktemp -d "${TMPDIR:-/tmp}/vg-k8s.XXXXXX")
trap 'rm -rf "$OUT"' EXIT
FAILED=0
fail() { echo "FAIL: $*" >&2; FAILED=$((FAILED + 1)); }

yamllint -c "$REPO/.yamllint.yaml" --strict "$REPO/k8s" || fail "yamllint k8s/"

rendered=()
for dir in "$REPO"/k8s/base "$REPO"/k8s/overlays/*/; do
  dir=${dir%/}
  name=$(basename "$dir")
  if kubectl kustomize "$dir" >"$OUT/$name.yaml" 2>"$OUT/$name.err"; then
    echo "rendered $name: $(grep -c '^kind:' "$OUT/$name.yaml") objects"
    rendered+=("$OUT/$name.yaml")
  else
    fail "kubectl kustomize $dir: $(cat "$OUT/$name.err")"
  fi
done
((${#rendered[@]} >= 3)) || fail "expected the base and at least two overlays, rendered ${#rendered[@]}"

node "$HERE/validate_manifests.mjs" --self-test || fail "schema validator self-test"
node "$HERE/validate_manifests.mjs" "${rendered[@]}" || fail "schema validation"
"$PYTHON" "$HERE/policy_check.py" "${rendered[@]}" || fail "policy"
for f in "${rendered[@]}"; do
  "$PYTHON" "$HERE/policy_check.py" --self-test "$f" >"$OUT/self-test.log" ||
    { cat "$OUT/self-test.log" >&2; fail "policy self-test on $(basename "$f")"; }
done

[ $FAILED = 0 ] && echo "ok: k8s/ renders, validates and follows the policy"
exit $((FAILED > 0))
