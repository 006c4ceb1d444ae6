#!/usr/bin/env bash
# Make the mTLS certificates of an advclip deployment with openssl:
#   ca.crt/ca.key                  a private CA (keep ca.key offline after use)
#   coordinator.crt/coordinator.key  server + client cert, SANs: coordinator,
#                                  advclip-coordinator (Kubernetes Service),
#                                  localhost, 127.0.0.1 and any extra names given
#   worker.crt/worker.key          one client cert all workers share (Kubernetes
#                                  without cert-manager; compose's workers and
#                                  components/cert-manager give each its own)
#   nats.crt/nats.key              NATS's server cert, SANs: nats (compose),
#                                  advclip-nats[.advclip.svc[.cluster.local]], localhost
#   signer.crt/signer.key          server cert of compose's signer service
# Usage: deploy/certs/make-certs.sh [OUT_DIR] [EXTRA_DNS_NAME...]
# OUT_DIR defaults to the directory of this script. Existing files are kept,
# so re-running does not rotate a live CA by accident; delete them to renew.
# Kubernetes: the script prints the `kubectl create secret` commands.
set -euo pipefail

out="${1:-$(cd "$(dirname "$0")" && pwd)}"
shift || true
days="${ADVCLIP_CERT_DAYS:-825}"
mkdir -p "$out"
cd "$out"
umask 077

if [[ ! -f ca.key ]]; then
  openssl req -x509 -new -newkey rsa:3072 -nodes -sha256 -days "$days" \
    -keyout ca.key -out ca.crt -subj "/CN=advclip-ca" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign"
fi

# issue NAME CN EXT_KEY_USAGE SAN
issue() {
  local name="$1" cn="$2" eku="$3" san="$4"
  [[ -f "$name.crt" ]] && return 0
  openssl req -new -newkey rsa:3072 -nodes -sha256 \
    -keyout "$name.key" -out "$name.csr" -subj "/CN=$cn"
  printf '%s\n' \
    "basicConstraints=critical,CA:FALSE" \
    "keyUsage=critical,digitalSignature,keyEncipherment" \
    "extendedKeyUsage=$eku" \
    ${san:+"subjectAltName=$san"} > "$name.ext"
  openssl x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key -CAcreateserial \
    -days "$days" -sha256 -extfile "$name.ext" -out "$name.crt"
  rm -f "$name.csr" "$name.ext"
}

coordinator_san="DNS:coordinator,DNS:advclip-coordinator,DNS:localhost,IP:127.0.0.1"
for extra in "$@"; do coordinator_san+=",DNS:$extra"; done
issue coordinator coordinator serverAuth,clientAuth "$coordinator_san"
issue worker advclip-worker clientAuth ""
issue nats advclip-nats serverAuth \
  "DNS:nats,DNS:advclip-nats,DNS:advclip-nats.advclip.svc,DNS:advclip-nats.advclip.svc.cluster.local,DNS:localhost,IP:127.0.0.1"
issue signer signer serverAuth "DNS:signer"

# The containers run as the invoking user (ADVCLIP_UID in .env), so owner-only
# keys stay readable to them; certificates are public.
chmod 600 ./*.key
chmod 644 ./*.crt
openssl verify -CAfile ca.crt coordinator.crt worker.crt nats.crt signer.crt

cat <<MSG
certificates in $out
Kubernetes:
  kubectl create secret generic advclip-coordinator-tls --from-file=tls.crt=$out/coordinator.crt --from-file=tls.key=$out/coordinator.key --from-file=ca.crt=$out/ca.crt
  kubectl create secret generic advclip-worker-tls --from-file=tls.crt=$out/worker.crt --from-file=tls.key=$out/worker.key --from-file=ca.crt=$out/ca.crt
  kubectl create secret generic advclip-nats-tls --from-file=tls.crt=$out/nats.crt --from-file=tls.key=$out/nats.key --from-file=ca.crt=$out/ca.crt
MSG
