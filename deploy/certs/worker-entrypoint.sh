#!/bin/sh
# Entrypoint of docker-compose.yml's workers: each container gets its own
# client certificate, hence its own identity, before it starts.
#   1. a P-256 key and a CSR, made here in memory (ADVCLIP_TLS_DIR, default
#      /dev/shm: the container's own tmpfs, 1777 and fresh on every start,
#      also after a restart): the key never leaves this container and is gone
#      when it stops;
#   2. the `signer` service signs it (deploy/certs/signer.mjs), naming the
#      certificate after this container: SAN URI spiffe://advclip/worker/<name>;
#   3. exec advclip with the given arguments plus --tls-cert/--tls-key.
# Needs ADVCLIP_SIGNER_URL, ADVCLIP_TLS_CA and ADVCLIP_CLUSTER_TOKEN_FILE.
set -eu
umask 077
dir=$(mktemp -d "${ADVCLIP_TLS_DIR:-/dev/shm}/advclip-tls.XXXXXX")
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
  -keyout "$dir/worker.key" -out "$dir/worker.csr" -subj "/CN=$(hostname)" 2>/dev/null
node /app/deploy/certs/request-cert.mjs "$ADVCLIP_SIGNER_URL" "$ADVCLIP_TLS_CA" "$ADVCLIP_CLUSTER_TOKEN_FILE" "$dir/worker.csr" "$dir/worker.crt"
rm -f "$dir/worker.csr"
echo "worker-entrypoint: certificate for $(openssl x509 -in "$dir/worker.crt" -noout -ext subjectAltName | sed -n 's/^ *URI://p')"
exec node /app/bin/advclip.mjs "$@" --tls-cert "$dir/worker.crt" --tls-key "$dir/worker.key"
