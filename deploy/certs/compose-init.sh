#!/usr/bin/env bash
# The one-shot `init` service of docker-compose.yml: on the first start it
# makes the deployment's secrets; on every start it hands each service its own
# copy, owned by the uid the services run as (ADVCLIP_UID), so any uid works.
#
#   /state        (volume advclip-ca; mounted read-only by the signer service,
#                 by no other): the CA with its private key, the services'
#                 certificates and keys, the NATS passwords and the cluster
#                 token. Made once, kept across restarts.
#   /out/coordinator  coordinator.crt/.key, ca.crt, nats-password, cluster-token
#   /out/worker       ca.crt, nats-password, cluster-token: each worker makes
#                     its own key and gets its certificate from the signer
#                     (worker-entrypoint.sh, signer.mjs)
#   /out/nats         nats.crt/.key (its TLS), coordinator-password, worker-password
#   /out/grafana      admin-password (read it from this volume to log in as admin)
#   /checkpoints, /results   made writable for ADVCLIP_UID
#
# Secrets are never printed. Runs as root inside the advclip image.
set -euo pipefail
umask 077

uid="${ADVCLIP_UID:-1000}"
gid="${ADVCLIP_GID:-1000}"
state=/state
say() { printf 'init: %s\n' "$*"; }

made=()
if [[ ! -f "$state/ca.key" || ! -f "$state/coordinator.crt" || ! -f "$state/nats.crt" || ! -f "$state/signer.crt" ]]; then
  # make-certs.sh keeps what exists and prints only paths and kubectl hints.
  bash "$(dirname "$0")/make-certs.sh" "$state" >/dev/null 2>"$state/make-certs.log" \
    || { cat "$state/make-certs.log" >&2; exit 1; }
  made+=(certificates)
fi
for secret in nats-coordinator-password nats-worker-password cluster-token grafana-admin-password; do
  if [[ ! -s "$state/$secret" ]]; then
    openssl rand -hex 32 > "$state/$secret.tmp" && mv "$state/$secret.tmp" "$state/$secret"
    made+=("$secret")
  fi
done
if (( ${#made[@]} )); then say "created ${made[*]} in the init volume"; else say "kept the secrets made on the first start"; fi

# give OWNER DIR SRC:NAME... copies each file, readable by OWNER only.
give() {
  local owner="$1" dir="$2"
  shift 2
  mkdir -p "$dir"
  find "$dir" -mindepth 1 -delete
  for pair in "$@"; do
    install -m 0400 -o "${owner%%:*}" -g "${owner##*:}" "$state/${pair%%:*}" "$dir/${pair##*:}"
  done
  chown "$owner" "$dir"
  chmod 0500 "$dir"
}
give "$uid:$gid" /out/coordinator coordinator.crt:coordinator.crt coordinator.key:coordinator.key ca.crt:ca.crt \
  nats-coordinator-password:nats-password cluster-token:cluster-token
give "$uid:$gid" /out/worker ca.crt:ca.crt nats-worker-password:nats-password cluster-token:cluster-token
give 0:0 /out/nats nats.crt:nats.crt nats.key:nats.key nats-coordinator-password:coordinator-password nats-worker-password:worker-password
# Grafana's image runs as uid 472.
give 472:0 /out/grafana grafana-admin-password:admin-password
say "handed out the coordinator's, the workers', NATS's and Grafana's own secrets (owner $uid:$gid); the CA key stays here, for the signer"

# Checkpoints (named volume) and results (bind mount of ./results) must be
# writable by the services' uid, whatever uid wrote them before.
chown -R "$uid:$gid" /checkpoints
mkdir -p /results
if ! setpriv --reuid="$uid" --regid="$gid" --clear-groups test -w /results; then
  chown "$uid:$gid" /results
  say "./results was not writable for uid $uid: now owned by $uid:$gid (set ADVCLIP_UID/ADVCLIP_GID in .env to your own \`id -u\`/\`id -g\` to keep it yours)"
fi
say "ready"
