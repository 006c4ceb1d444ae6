import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { repoRoot, run, skipUnless } from './tools.ts';

interface Service {
  image?: string;
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
  deploy?: { resources?: { reservations?: { devices?: Array<{ driver: string; capabilities: string[] }> } } };
}

const read = (path: string) => readFileSync(join(repoRoot, path), 'utf8');
const compose = parse(read('docker-compose.yml'), { merge: true }) as {
  services: Record<string, Service>;
  volumes: Record<string, unknown>;
};
const services = compose.services;
const flag = (s: Service, name: string) => s.command?.[s.command.indexOf(name) + 1];
const mount = (s: Service, target: string) => s.volumes?.find((v) => v.split(':')[1] === target);

/** What `docker compose` needs in .env; the values are throwaway. */
const composeEnv = {
  NATS_COORDINATOR_PASSWORD: 'test-coordinator-secret',
  NATS_WORKER_PASSWORD: 'test-worker-secret',
  GRAFANA_ADMIN_PASSWORD: 'test-grafana-secret',
};

describe('docker-compose.yml', () => {
  it('has the services of the cluster', () => {
    assert.deepEqual(Object.keys(services).sort(), ['coordinator', 'grafana', 'nats', 'prometheus', 'worker', 'worker-gpu']);
  });

  it('lets workers scale: no container names, no host ports on coordinator or workers', () => {
    for (const [name, s] of Object.entries(services)) assert.equal(s.container_name, undefined, name);
    for (const name of ['coordinator', 'worker', 'worker-gpu']) {
      assert.equal(services[name].ports, undefined, `${name} publishes no host port`);
    }
    assert.deepEqual(services.worker.expose, ['9464']);
    assert.deepEqual(services.coordinator.expose, ['50051', '9464']);
  });

  it('publishes host ports on loopback only', () => {
    const published = Object.values(services).flatMap((s) => s.ports ?? []);
    assert.deepEqual(published.sort(), ['127.0.0.1:3000:3000', '127.0.0.1:8222:8222', '127.0.0.1:9090:9090']);
  });

  it('runs NATS with JetStream on a named volume and auth from the config file', () => {
    const nats = services.nats;
    assert.match(nats.image!, /^nats:2\.\d+/);
    assert.ok(nats.command!.includes('-js'));
    assert.equal(flag(nats, '-c'), '/etc/nats/nats.conf');
    assert.equal(mount(nats, '/etc/nats/nats.conf'), './deploy/nats/nats.conf:/etc/nats/nats.conf:ro');
    assert.equal(mount(nats, '/data'), 'nats-data:/data');
    assert.equal(flag(nats, '-sd'), '/data/jetstream');
    const conf = read('deploy/nats/nats.conf');
    for (const v of ['NATS_COORDINATOR_USER', 'NATS_COORDINATOR_PASSWORD', 'NATS_WORKER_USER', 'NATS_WORKER_PASSWORD']) {
      assert.match(conf, new RegExp(`\\$${v}\\b`), `nats.conf takes ${v} from the environment`);
      assert.ok(nats.environment![v], `compose passes ${v} to nats`);
    }
  });

  it('takes every secret from the environment, required, never a literal', () => {
    const secrets = Object.values(services).flatMap((s) =>
      Object.entries(s.environment ?? {}).filter(([k]) => /PASSWORD/.test(k)),
    );
    assert.ok(secrets.length >= 5);
    for (const [key, value] of secrets) assert.match(value, /^\$\{[A-Z_]+:\?.+\}$/, key);
    assert.equal(services.coordinator.environment!.NATS_USER, '${NATS_COORDINATOR_USER:-advclip-coordinator}');
    assert.equal(services.worker.environment!.NATS_USER, '${NATS_WORKER_USER:-advclip-worker}');
    const example = read('.env.example');
    for (const [, value] of secrets) {
      const name = /^\$\{([A-Z_]+)/.exec(value)![1];
      assert.match(example, new RegExp(`^${name}=$`, 'm'), `.env.example lists ${name} with no value`);
    }
  });

  it('mounts model and data read-only, certificates read-only, checkpoints on a named volume', () => {
    for (const name of ['coordinator', 'worker', 'worker-gpu']) {
      const s = services[name];
      assert.equal(mount(s, '/models'), './models:/models:ro', name);
      assert.equal(mount(s, '/data'), './data:/data:ro', name);
      assert.equal(mount(s, '/certs'), './deploy/certs:/certs:ro', name);
    }
    assert.equal(mount(services.coordinator, '/checkpoints'), 'checkpoints:/checkpoints');
    assert.equal(flag(services.coordinator, '--checkpoint-dir'), '/checkpoints');
    assert.deepEqual(Object.keys(compose.volumes).sort(), ['checkpoints', 'grafana-data', 'nats-data', 'prometheus-data']);
  });

  it('wires coordinator and workers together with mTLS and NATS', () => {
    const c = services.coordinator;
    const w = services.worker;
    assert.equal(flag(c, '--listen'), '0.0.0.0:50051');
    assert.equal(flag(w, '--coordinator'), 'coordinator:50051');
    for (const s of [c, w]) {
      assert.equal(flag(s, '--nats'), 'nats://nats:4222');
      assert.equal(flag(s, '--metrics-port'), '9464');
      assert.ok(!s.command!.includes('--insecure'));
    }
    const script = read('deploy/certs/make-certs.sh');
    for (const [s, who] of [[c, 'coordinator'], [w, 'worker']] as const) {
      assert.equal(flag(s, '--tls-cert'), `/certs/${who}.crt`);
      assert.equal(flag(s, '--tls-key'), `/certs/${who}.key`);
      assert.equal(flag(s, '--tls-ca'), '/certs/ca.crt');
      assert.match(script, new RegExp(`issue ${who} `), `make-certs.sh issues ${who}.crt`);
    }
    assert.match(script, /DNS:coordinator,.*DNS:localhost,IP:127\.0\.0\.1/);
  });

  it('health-checks the advclip services on /healthz with node (the images have no curl)', () => {
    for (const name of ['coordinator', 'worker', 'worker-gpu']) {
      const test = services[name].healthcheck!.test;
      assert.deepEqual(test.slice(0, 3), ['CMD', 'node', '-e'], name);
      assert.match(test[3], /fetch\('http:\/\/127\.0\.0\.1:9464\/healthz'\)/);
    }
    for (const name of ['nats', 'prometheus', 'grafana']) assert.ok(services[name].healthcheck, name);
  });

  it('runs GPU workers only under the gpu profile, with an nvidia device reservation and the gpu image', () => {
    const gpu = services['worker-gpu'];
    assert.deepEqual(gpu.profiles, ['gpu']);
    assert.equal(gpu.build!.dockerfile, 'deploy/docker/Dockerfile.gpu');
    assert.equal(gpu.image, 'advclip-cluster:gpu');
    const [device] = gpu.deploy!.resources!.reservations!.devices!;
    assert.equal(device.driver, 'nvidia');
    assert.deepEqual(device.capabilities, ['gpu']);
    assert.deepEqual(gpu.command, services.worker.command);
    for (const name of ['coordinator', 'worker']) assert.equal(services[name].profiles, undefined, name);
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

  it('provisions Grafana: datasource, dashboard provider, anonymous viewer, admin password from env', () => {
    const g = services.grafana;
    assert.equal(g.environment!.GF_AUTH_ANONYMOUS_ENABLED, 'true');
    assert.equal(g.environment!.GF_AUTH_ANONYMOUS_ORG_ROLE, 'Viewer');
    assert.match(g.environment!.GF_SECURITY_ADMIN_PASSWORD, /^\$\{GRAFANA_ADMIN_PASSWORD:\?/);
    assert.equal(mount(g, '/etc/grafana/provisioning'), './deploy/grafana/provisioning:/etc/grafana/provisioning:ro');
    const dashboards = mount(g, '/etc/grafana/dashboards')!;
    const provider = parse(read('deploy/grafana/provisioning/dashboards/advclip.yml')) as { providers: Array<{ options: { path: string } }> };
    assert.equal(provider.providers[0].options.path, dashboards.split(':')[1]);
    assert.ok(existsSync(join(repoRoot, dashboards.split(':')[0], 'advclip.json')));
    const ds = parse(read('deploy/grafana/provisioning/datasources/prometheus.yml')) as { datasources: Array<{ url: string }> };
    assert.equal(ds.datasources[0].url, 'http://prometheus:9090');
  });

  it('mounts only files the repository has (besides models/ and data/, made by their scripts)', () => {
    const sources = Object.values(services)
      .flatMap((s) => s.volumes ?? [])
      .map((v) => v.split(':')[0])
      .filter((src) => src.startsWith('./') && !['./models', './data'].includes(src));
    for (const src of sources) assert.ok(existsSync(join(repoRoot, src)), src);
    for (const s of Object.values(services)) {
      if (s.build) assert.ok(existsSync(join(repoRoot, s.build.context, s.build.dockerfile)), s.build.dockerfile);
    }
  });

  const skip = skipUnless('docker-compose', "Debian's docker-compose validates the file offline");

  it('passes `docker-compose config -q`, with and without the gpu profile', { skip }, () => {
    for (const args of [['-f', 'docker-compose.yml', 'config', '-q'], ['-f', 'docker-compose.yml', '--profile', 'gpu', 'config', '-q']]) {
      const r = run('docker-compose', args, composeEnv);
      assert.equal(r.status, 0, `docker-compose ${args.join(' ')}: ${r.stderr}`);
    }
  });

  it('refuses to start while a password is unset', { skip }, () => {
    const { NATS_WORKER_PASSWORD: _, ...partial } = composeEnv;
    const r = run('docker-compose', ['-f', 'docker-compose.yml', 'config', '-q'], { ...partial, NATS_WORKER_PASSWORD: '' });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /set NATS_WORKER_PASSWORD in \.env/);
  });
});
