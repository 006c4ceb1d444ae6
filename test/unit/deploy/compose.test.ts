import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { onPath, repoRoot, run, skipUnless } from './tools.ts';

interface Service {
  image?: string;
  entrypoint?: string[];
  tmpfs?: string[];
  read_only?: boolean;
  cap_drop?: string[];
  build?: { context: string; dockerfile: string };
  command?: string[];
  environment?: Record<string, string>;
  volumes?: string[];
  ports?: string[];
  expose?: string[];
  profiles?: string[];
  container_name?: string;
  user?: string;
  healthcheck?: { test: string[] };
  depends_on?: unknown;
  deploy?: { resources?: { reservations?: { devices?: Array<{ driver: string; capabilities: string[]; count?: number; device_ids?: string[] }> } } };
}

const read = (path: string) => readFileSync(join(repoRoot, path), 'utf8');
const compose = parse(read('docker-compose.yml'), { merge: true }) as {
  services: Record<string, Service>;
  volumes: Record<string, unknown>;
};
const services = compose.services;
const flag = (s: Service, name: string) => s.command?.[s.command.indexOf(name) + 1];
/** source, target[, mode] of a volume entry; a `${VAR:-default}` source keeps its colons. */
const volumeParts = (v: string) => v.replace(/\$\{[^}]*\}/g, (m) => m.replaceAll(':', '\0')).split(':').map((p) => p.replaceAll('\0', ':'));
const mount = (s: Service, target: string) => s.volumes?.find((v) => volumeParts(v)[1] === target);

/** The default of a `${VAR:-default}` path, or the path itself. */
const hostPath = (src: string) => /^\$\{[A-Z_]+:-(.+)\}$/.exec(src)?.[1] ?? src;
const advclip = ['coordinator', 'worker', 'worker-gpu'] as const;

describe('docker-compose.yml', () => {
  it('has the services of the cluster, with a one-shot init and Grafana under its own profile', () => {
    assert.deepEqual(Object.keys(services).sort(), ['coordinator', 'grafana', 'init', 'nats', 'prometheus', 'signer', 'worker', 'worker-gpu']);
    assert.deepEqual(services.grafana.profiles, ['grafana']);
    for (const name of ['init', 'signer', 'nats', 'coordinator', 'worker', 'prometheus']) assert.equal(services[name].profiles, undefined, name);
  });

  it('lets workers scale: no container names, no host ports on coordinator or workers', () => {
    for (const [name, s] of Object.entries(services)) assert.equal(s.container_name, undefined, name);
    for (const name of advclip) assert.equal(services[name].ports, undefined, `${name} publishes no host port`);
    assert.deepEqual(services.worker.expose, ['9464']);
    assert.deepEqual(services.coordinator.expose, ['50051', '9464']);
  });

  it('publishes host ports on loopback only (ports overridable in .env)', () => {
    const published = Object.values(services).flatMap((s) => s.ports ?? []);
    assert.deepEqual(published.sort(), ['127.0.0.1:${GRAFANA_PORT:-3000}:3000', '127.0.0.1:${NATS_MONITOR_PORT:-8222}:8222', '127.0.0.1:${PROMETHEUS_PORT:-9090}:9090']);
  });

  it('builds the one advclip image once (on init) and runs it for init, coordinator and workers', () => {
    const built = Object.entries(services).filter(([, s]) => s.build?.dockerfile === 'deploy/docker/Dockerfile.cpu').map(([n]) => n);
    assert.deepEqual(built, ['init']);
    for (const name of ['init', 'signer', 'coordinator', 'worker']) assert.equal(services[name].image, 'advclip-cluster:cpu', name);
    assert.match(read('deploy/docker/Dockerfile.cpu'), /^FROM node:22-bookworm-slim AS runtime$/m);
  });

  it('restarts a crash but not a finished run; init runs once per `up`', () => {
    for (const name of advclip) assert.equal((services[name] as { restart?: string }).restart, 'on-failure', name);
    assert.equal((services.init as { restart?: string }).restart, 'no');
    for (const name of ['signer', 'nats', 'coordinator', 'worker']) {
      assert.deepEqual((services[name].depends_on as Record<string, unknown>).init, { condition: 'service_completed_successfully' }, name);
    }
  });

  it('runs NATS with JetStream on a named volume, its passwords read from its own secret files', () => {
    const nats = services.nats as Service & { entrypoint: string[] };
    assert.match(nats.image!, /^nats:2\.\d+/);
    assert.ok(nats.command!.includes('-js'));
    assert.equal(flag(nats, '-c'), '/etc/nats/nats.conf');
    assert.equal(mount(nats, '/etc/nats/nats.conf'), './deploy/nats/nats.conf:/etc/nats/nats.conf:ro');
    assert.equal(mount(nats, '/data'), 'nats-data:/data');
    assert.equal(mount(nats, '/run/secrets/nats'), 'nats-secrets:/run/secrets/nats:ro');
    assert.equal(flag(nats, '-sd'), '/data/jetstream');
    const conf = read('deploy/nats/nats.conf');
    for (const v of ['NATS_COORDINATOR_USER', 'NATS_COORDINATOR_PASSWORD', 'NATS_WORKER_USER', 'NATS_WORKER_PASSWORD']) {
      assert.match(conf, new RegExp(`\\$${v}\\b`), `nats.conf takes ${v} from the environment`);
    }
    const script = nats.entrypoint.join(' ');
    assert.match(script, /NATS_COORDINATOR_PASSWORD="\$\$\(cat \/run\/secrets\/nats\/coordinator-password\)"/);
    assert.match(script, /NATS_WORKER_PASSWORD="\$\$\(cat \/run\/secrets\/nats\/worker-password\)"/);
    assert.match(script, /exec nats-server "\$\$@"/);
  });

  it('runs NATS with TLS only, its certificate from its own secret volume', () => {
    const nats = services.nats;
    assert.deepEqual([nats.environment!.NATS_TLS_CERT, nats.environment!.NATS_TLS_KEY], ['/run/secrets/nats/nats.crt', '/run/secrets/nats/nats.key']);
    assert.match(read('deploy/nats/nats.conf'), /^tls \{\s*cert_file: \$NATS_TLS_CERT\s*key_file: \$NATS_TLS_KEY/m);
    assert.match(read('deploy/certs/compose-init.sh'), /give 0:0 \/out\/nats nats\.crt:nats\.crt nats\.key:nats\.key /);
    assert.match(read('deploy/certs/make-certs.sh'), /issue nats advclip-nats serverAuth[^\n]*\n[^\n]*"DNS:nats,/, 'the certificate names the host clients dial');
    assert.equal(nats.ports!.length, 1, 'only the monitoring port is published, on loopback');
  });

  it('puts no secret in any environment value: passwords and the token come from files', () => {
    for (const [name, s] of Object.entries(services)) {
      for (const [key, value] of Object.entries(s.environment ?? {})) {
        if (/PASSWORD|TOKEN/.test(key)) assert.match(key, /_FILE$/, `${name}: ${key}=${value}`);
      }
    }
    assert.equal(services.coordinator.environment!.NATS_PASSWORD_FILE, '/run/secrets/advclip/nats-password');
    assert.equal(services.worker.environment!.NATS_PASSWORD_FILE, '/run/secrets/advclip/nats-password');
    for (const name of ['coordinator', 'worker']) assert.equal(flag(services[name], '--cluster-token-file'), '/run/secrets/advclip/cluster-token');
    assert.doesNotMatch(read('.env.example'), /PASSWORD=|TOKEN=/);
  });

  it('gives each service only its own secrets; the CA key stays in the init volume', () => {
    const mountsOf = (volume: string) => Object.entries(services).filter(([, s]) => (s.volumes ?? []).some((v) => volumeParts(v)[0] === volume)).map(([n]) => n).sort();
    assert.deepEqual(mountsOf('advclip-ca'), ['init', 'signer']);
    assert.equal(mount(services.signer, '/state'), 'advclip-ca:/state:ro', 'the signer reads the CA key, read-only');
    assert.deepEqual(mountsOf('coordinator-secrets'), ['coordinator', 'init']);
    assert.deepEqual(mountsOf('worker-secrets'), ['init', 'worker', 'worker-gpu']);
    assert.deepEqual(mountsOf('nats-secrets'), ['init', 'nats']);
    assert.deepEqual(mountsOf('grafana-secrets'), ['grafana', 'init']);
    for (const name of advclip) {
      assert.equal(mount(services[name], '/certs'), undefined, `${name} mounts no certs folder`);
      assert.ok(!(services[name].volumes ?? []).some((v) => v.startsWith('./deploy/certs')), name);
    }
    const init = read('deploy/certs/compose-init.sh');
    assert.match(init, /give "\$uid:\$gid" \/out\/coordinator coordinator\.crt:coordinator\.crt coordinator\.key:coordinator\.key ca\.crt:ca\.crt/);
    assert.match(init, /give "\$uid:\$gid" \/out\/worker ca\.crt:ca\.crt nats-worker-password:nats-password cluster-token:cluster-token\n/, 'workers get no key: each makes its own');
    assert.doesNotMatch(init, /ca\.key:/, 'ca.key is handed to no one');
  });

  it('mounts model and data read-only, checkpoints on a named volume, results to ./results on the host', () => {
    for (const name of advclip) {
      const s = services[name];
      assert.equal(mount(s, '/models'), './models:/models:ro', name);
      assert.equal(mount(s, '/data'), './data:/data:ro', name);
    }
    assert.equal(mount(services.coordinator, '/checkpoints'), 'checkpoints:/checkpoints');
    assert.equal(flag(services.coordinator, '--checkpoint-dir'), '/checkpoints');
    assert.equal(mount(services.coordinator, '/results'), '${ADVCLIP_RESULTS:-./results}:/results');
    assert.equal(flag(services.coordinator, '--out'), '/results/${ADVCLIP_RUN:-advclip-lora}');
    assert.equal(mount(services.coordinator, '/etc/advclip/training.yaml'), '${ADVCLIP_CONFIG:-./deploy/config/quick.yaml}:/etc/advclip/training.yaml:ro');
    assert.deepEqual(Object.keys(compose.volumes).sort(), [
      'advclip-ca', 'checkpoints', 'coordinator-secrets', 'grafana-data', 'grafana-secrets', 'nats-data', 'nats-secrets', 'prometheus-data', 'worker-secrets',
    ]);
  });

  it('runs a short default: deploy/config/quick.yaml', () => {
    const quick = parse(read('deploy/config/quick.yaml')) as Record<string, unknown>;
    assert.equal(quick.method, 'advclip-lora');
    assert.equal(quick.sync, undefined, 'no coordinator-only key: `advclip train --config` reads the same file');
    assert.ok((quick.iters as number) <= 150, `${quick.iters} steps`);
  });

  it('wires coordinator and workers together with mTLS and NATS over TLS, verified with the CA', () => {
    const c = services.coordinator;
    const w = services.worker;
    assert.equal(flag(c, '--listen'), '0.0.0.0:50051');
    assert.equal(flag(w, '--coordinator'), 'coordinator:50051');
    for (const s of [c, w]) {
      assert.equal(flag(s, '--nats'), 'tls://nats:4222');
      assert.equal(flag(s, '--nats-ca'), '/run/secrets/advclip/ca.crt');
      assert.equal(flag(s, '--metrics-port'), '9464');
      assert.equal(flag(s, '--tls-ca'), '/run/secrets/advclip/ca.crt');
      assert.ok(!s.command!.includes('--insecure'));
    }
    assert.equal(flag(c, '--tls-cert'), '/run/secrets/advclip/coordinator.crt');
    assert.equal(flag(c, '--tls-key'), '/run/secrets/advclip/coordinator.key');
    const script = read('deploy/certs/make-certs.sh');
    assert.match(script, /issue coordinator /);
    assert.match(script, /DNS:coordinator,.*DNS:localhost,IP:127\.0\.0\.1/);
  });

  it("gives each worker container its own key (tmpfs) and a certificate from the signer naming the container", () => {
    for (const name of ['worker', 'worker-gpu']) {
      const w = services[name];
      assert.deepEqual(w.entrypoint, ['sh', '/app/deploy/certs/worker-entrypoint.sh'], name);
      assert.ok(!w.command!.includes('--tls-cert') && !w.command!.includes('--tls-key'), `${name}: the entrypoint adds --tls-cert/--tls-key`);
      assert.equal(w.environment!.ADVCLIP_SIGNER_URL, 'https://signer:8443');
      assert.deepEqual((w.depends_on as Record<string, unknown>).signer, { condition: 'service_healthy' });
    }
    const entry = read('deploy/certs/worker-entrypoint.sh');
    assert.match(entry, /mktemp -d "\$\{ADVCLIP_TLS_DIR:-\/dev\/shm\}/, 'its key is in memory (the container\'s own tmpfs, fresh on every start)');
    assert.match(entry, /exec node \/app\/bin\/advclip\.mjs "\$@" --tls-cert "\$dir\/worker\.crt" --tls-key "\$dir\/worker\.key"/);
    const signer = services.signer;
    assert.deepEqual([signer.read_only, signer.cap_drop], [true, ['ALL']]);
    assert.equal(signer.ports, undefined, 'the signer is reachable on the compose network only');
    const code = read('deploy/certs/signer.mjs');
    assert.match(code, /IDENTITY_PREFIX = 'spiffe:\/\/advclip\/worker\/'/);
    assert.match(code, /reverse\(ip\)/, 'the name comes from Docker DNS, not from the CSR');
    assert.match(code, /'-subj', `\/CN=\$\{name\}`, '-extfile'/, 'the CSR\'s names are replaced');
    for (const file of ['signer.mjs', 'request-cert.mjs', 'worker-entrypoint.sh']) {
      assert.match(read('deploy/docker/Dockerfile.cpu'), new RegExp(`deploy/certs/${file.replace('.', '\\.')}`), `the image has ${file}`);
      assert.match(read('.dockerignore'), new RegExp(`^!deploy/certs/${file.replace('.', '\\.')}$`, 'm'));
    }
  });

  it('health-checks the advclip services on /healthz with node (the images have no curl)', () => {
    for (const name of advclip) {
      const test = services[name].healthcheck!.test;
      assert.deepEqual(test.slice(0, 3), ['CMD', 'node', '-e'], name);
      assert.match(test[3], /fetch\('http:\/\/127\.0\.0\.1:9464\/healthz'\)/);
    }
    for (const name of ['nats', 'prometheus', 'grafana']) assert.ok(services[name].healthcheck, name);
  });

  it('runs GPU workers only under the gpu profile, one nvidia device per replica, with the gpu image', () => {
    const gpu = services['worker-gpu'];
    assert.deepEqual(gpu.profiles, ['gpu']);
    assert.equal(gpu.build!.dockerfile, 'deploy/docker/Dockerfile.gpu');
    assert.equal(gpu.image, 'advclip-cluster:gpu');
    const devices = gpu.deploy!.resources!.reservations!.devices! as Array<{ driver: string; capabilities: string[]; count?: number; device_ids?: string[] }>;
    assert.equal(devices.length, 1);
    assert.equal(devices[0].driver, 'nvidia');
    assert.deepEqual(devices[0].capabilities, ['gpu']);
    assert.equal(devices[0].count, 1, 'one GPU (the first: count names no device, so replicas would share it)');
    assert.deepEqual(gpu.command, services.worker.command);
    assert.match(read('deploy/docker/Dockerfile.gpu'), /^FROM node:22-bookworm-slim AS node$/m);
  });

  it('gives each GPU worker its own device through deploy/docker/gpu-workers.mjs, all scraped as worker-gpu', () => {
    const r = spawnSync(process.execPath, [join(repoRoot, 'deploy/docker/gpu-workers.mjs'), '3'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const generated = parse(r.stdout, { merge: true }) as { services: Record<string, Service & { networks: { default: { aliases: string[] } } }> };
    assert.deepEqual(Object.keys(generated.services), ['worker-gpu-0', 'worker-gpu-1', 'worker-gpu-2']);
    const ids = Object.values(generated.services).map((g) => g.deploy!.resources!.reservations!.devices![0].device_ids);
    assert.deepEqual(ids, [['0'], ['1'], ['2']]);
    for (const g of Object.values(generated.services)) {
      assert.deepEqual(g.networks.default.aliases, ['worker-gpu'], 'Prometheus finds it under worker-gpu');
      assert.deepEqual(g.command, services.worker.command);
      assert.equal(g.image, 'advclip-cluster:gpu');
      assert.equal(g.profiles, undefined);
    }
    assert.equal(Object.values(generated.services).filter((g) => g.build).length, 1, 'the GPU image is built once');
    assert.notEqual(spawnSync(process.execPath, [join(repoRoot, 'deploy/docker/gpu-workers.mjs'), '0'], { encoding: 'utf8' }).status, 0);
    if (onPath('docker-compose')) {
      const dir = mkdtempSync(join(tmpdir(), 'advclip-gpus-'));
      try {
        writeFileSync(join(dir, 'docker-compose.gpus.yml'), r.stdout);
        const check = spawnSync('docker-compose', ['-f', 'docker-compose.yml', '-f', join(dir, 'docker-compose.gpus.yml'), '--project-directory', repoRoot, 'config', '-q'], { cwd: repoRoot, encoding: 'utf8' });
        assert.equal(check.status, 0, check.stderr);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
  });

  it('points Prometheus at the coordinator and at every worker container through Docker DNS', () => {
    const p = services.prometheus;
    assert.equal(mount(p, '/etc/prometheus/prometheus.yml'), './deploy/prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro');
    assert.equal(mount(p, '/etc/prometheus/rules.yml'), './deploy/prometheus/rules.yml:/etc/prometheus/rules.yml:ro');
    const config = parse(read('deploy/prometheus/prometheus.yml')) as {
      rule_files: string[];
      scrape_configs: Array<{ job_name: string; static_configs?: Array<{ targets: string[] }>; dns_sd_configs?: Array<{ names: string[]; port: number; type: string }> }>;
    };
    const job = (name: string) => config.scrape_configs.find((j) => j.job_name === name)!;
    assert.deepEqual(job('advclip-coordinator').static_configs![0].targets, ['coordinator:9464']);
    const sd = job('advclip-worker').dns_sd_configs![0];
    assert.deepEqual(sd.names, ['worker', 'worker-gpu']);
    assert.deepEqual([sd.type, sd.port], ['A', 9464]);
    assert.deepEqual(config.rule_files, ['rules.yml']);
  });

  it('provisions Grafana: datasource, dashboard provider, no anonymous access, admin password from a file', () => {
    const g = services.grafana;
    assert.equal(g.environment!.GF_AUTH_ANONYMOUS_ENABLED, 'false');
    assert.equal(g.environment!.GF_AUTH_ANONYMOUS_ORG_ROLE, undefined);
    assert.equal(g.environment!.GF_USERS_ALLOW_SIGN_UP, 'false');
    assert.equal(g.environment!.GF_SECURITY_ADMIN_PASSWORD__FILE, '/run/secrets/grafana/admin-password');
    assert.equal(mount(g, '/etc/grafana/provisioning'), './deploy/grafana/provisioning:/etc/grafana/provisioning:ro');
    const dashboards = mount(g, '/etc/grafana/dashboards')!;
    const provider = parse(read('deploy/grafana/provisioning/dashboards/advclip.yml')) as { providers: Array<{ options: { path: string } }> };
    assert.equal(provider.providers[0].options.path, dashboards.split(':')[1]);
    assert.ok(existsSync(join(repoRoot, dashboards.split(':')[0], 'advclip.json')));
    const ds = parse(read('deploy/grafana/provisioning/datasources/prometheus.yml')) as { datasources: Array<{ url: string }> };
    assert.equal(ds.datasources[0].url, 'http://prometheus:9090');
  });

  it('mounts only files the repository has (besides models/ and data/, made by their scripts, and results/, made by the run)', () => {
    const sources = Object.values(services)
      .flatMap((s) => s.volumes ?? [])
      .map((v) => hostPath(volumeParts(v)[0]))
      .filter((src) => src.startsWith('./') && !['./models', './data', './results'].includes(src));
    for (const src of sources) assert.ok(existsSync(join(repoRoot, src)), src);
    for (const s of Object.values(services)) {
      if (s.build) assert.ok(existsSync(join(repoRoot, s.build.context, s.build.dockerfile)), s.build.dockerfile);
    }
  });

  const skip = skipUnless('docker-compose', "Debian's docker-compose validates the file offline");

  it('passes `docker-compose config -q` with no .env at all, with and without the gpu and grafana profiles', { skip }, () => {
    const bare = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp' };
    for (const args of [['config', '-q'], ['--profile', 'gpu', '--profile', 'grafana', 'config', '-q']]) {
      const r = spawnSync('docker-compose', ['-f', 'docker-compose.yml', '--project-directory', repoRoot, ...args], { cwd: repoRoot, env: bare, encoding: 'utf8' });
      assert.equal(r.status, 0, `docker-compose ${args.join(' ')}: ${r.stderr}`);
    }
  });

  it('resolves to a configuration without secret values', { skip }, () => {
    const r = run('docker-compose', ['-f', 'docker-compose.yml', '--profile', 'grafana', 'config']);
    assert.equal(r.status, 0, r.stderr);
    const resolved = parse(r.stdout) as { services: Record<string, { environment?: Record<string, string> }> };
    for (const [name, s] of Object.entries(resolved.services)) {
      for (const key of Object.keys(s.environment ?? {})) assert.ok(!/PASSWORD$|TOKEN$/.test(key), `${name}: ${key}`);
    }
  });
});
