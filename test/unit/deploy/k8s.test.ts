import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { missing } from '../../helpers/requires.ts';
import { repoRoot, run, skipUnless } from './tools.ts';

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: any; // shapes differ by kind; the schemas check them
}

const k8sRoot = join(repoRoot, 'deploy/k8s');
const overlays = ['cpu', 'gpu', 'monitoring'] as const;
const isKustomization = (o: K8sObject) => o.apiVersion.startsWith('kustomize.config.k8s.io/');

function yamlFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? yamlFiles(join(dir, e.name)) : /\.ya?ml$/.test(e.name) ? [join(dir, e.name)] : [],
  );
}

function parseObjects(text: string, source: string): K8sObject[] {
  return parseAllDocuments(text).flatMap((doc) => {
    if (doc.errors.length > 0) throw new Error(`${source}: ${doc.errors[0].message}`);
    const o = doc.toJS() as K8sObject | null;
    return o ? [o] : [];
  });
}

const CRD_MODELS: Record<string, string> = {
  'monitoring.coreos.com/v1': '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1',
};

/**
 * Validates an object against the Kubernetes JSON schema of its kind
 * (kubernetes-models). Returns the reason when no schema is installed for it.
 */
async function validate(o: K8sObject): Promise<string | undefined> {
  const module = CRD_MODELS[o.apiVersion] ?? `kubernetes-models/${o.apiVersion}`;
  let models: Record<string, new (data: unknown) => { validate(): void }>;
  try {
    models = await import(module);
  } catch {
    return `${o.kind} ${o.metadata.name}: no schema for ${o.apiVersion} (install ${module.split('/').slice(0, 2).join('/')} to check it)`;
  }
  const Model = models[o.kind];
  assert.ok(Model, `${o.apiVersion} has no kind ${o.kind}`);
  new Model(o).validate();
  return undefined;
}

async function validateAll(objects: K8sObject[], where: string, t: { diagnostic(msg: string): void }): Promise<void> {
  for (const o of objects) {
    try {
      const unchecked = await validate(o);
      // no schema package: a failure under CI=true (it installs them), a loud skip elsewhere
      if (unchecked) t.diagnostic(`schema check skipped: ${missing('a schema model package', unchecked, 'it must be a devDependency so that npm ci installs it')}`);
    } catch (err) {
      assert.fail(`${where}: ${o.kind} ${o.metadata?.name}: ${(err as Error).message}`);
    }
  }
}

const sources = new Map(yamlFiles(k8sRoot).map((f) => [relative(repoRoot, f), parseObjects(readFileSync(f, 'utf8'), f)]));
const manifests = [...sources.values()].flat().filter((o) => !isKustomization(o));
const find = (kind: string, name: string, objects = manifests) => {
  const o = objects.find((x) => x.kind === kind && x.metadata.name === name);
  assert.ok(o, `${kind} ${name}`);
  return o!;
};
const container = (o: K8sObject) => o.spec.template.spec.containers[0];
const arg = (o: K8sObject, name: string) =>
  (container(o).args as string[]).find((a) => a.startsWith(`${name}=`))?.slice(name.length + 1);

describe('Kubernetes manifests under deploy/k8s', () => {
  it('validate against the Kubernetes schemas (kubernetes-models)', async (t) => {
    assert.ok(manifests.length >= 8, `${manifests.length} manifests`);
    await validateAll(manifests, 'deploy/k8s', t);
  });

  it('the validator is not a no-op: a broken Deployment is refused', async () => {
    const broken = structuredClone(find('Deployment', 'advclip-worker'));
    broken.spec.replicas = 'two';
    await assert.rejects(validate(broken), /replicas/);
  });

  it('every kustomization names files and directories that exist', () => {
    for (const [file, objects] of sources) {
      for (const k of objects.filter(isKustomization) as Array<K8sObject & Record<string, string[] | undefined>>) {
        for (const ref of [...(k.resources ?? []), ...(k.components ?? [])]) {
          assert.ok(existsSync(join(repoRoot, dirname(file), ref)), `${file}: ${ref}`);
        }
      }
    }
  });

  it('ship no Secret values, only references to them', () => {
    assert.equal(manifests.filter((o) => o.kind === 'Secret').length, 0);
    const text = [...sources.keys()].map((f) => readFileSync(join(repoRoot, f), 'utf8')).join('\n');
    assert.doesNotMatch(text, /password:\s*\S/i);
    for (const name of ['advclip-coordinator', 'advclip-worker']) {
      const pod = find(name === 'advclip-worker' ? 'Deployment' : 'StatefulSet', name).spec.template.spec;
      const secretRefs = Object.fromEntries(pod.containers[0].env.filter((e: any) => e.valueFrom?.secretKeyRef).map((e: any) => [e.name, e.valueFrom.secretKeyRef.name]));
      assert.deepEqual(secretRefs, { NATS_USER: 'advclip-nats-auth', NATS_PASSWORD: 'advclip-nats-auth' });
      assert.ok(pod.containers[0].env.every((e: any) => e.valueFrom || !/password|token|secret/i.test(e.name)), 'no literal secret in env');
      assert.equal(pod.volumes.find((v: any) => v.name === 'tls').secret.secretName, `${name}-tls`);
    }
  });

  it("gives each worker as many native threads as its pod requests CPUs, not the node's every core", () => {
    const worker = find('Deployment', 'advclip-worker').spec.template.spec.containers[0];
    const threads = worker.env.find((e: any) => e.name === 'ADVCLIP_NATIVE_THREADS');
    assert.deepEqual(threads?.valueFrom?.resourceFieldRef, { containerName: worker.name, resource: 'requests.cpu', divisor: '1' });
    assert.ok(worker.resources.requests.cpu, 'the request it reads is set');
  });

  it('runs the coordinator as a StatefulSet with a checkpoint PVC behind the advclip-coordinator Service', () => {
    const sts = find('StatefulSet', 'advclip-coordinator');
    assert.equal(sts.spec.replicas, 1);
    assert.deepEqual(sts.spec.volumeClaimTemplates.map((v: K8sObject) => v.metadata.name), ['checkpoints']);
    assert.equal(arg(sts, '--checkpoint-dir'), '/checkpoints');
    assert.ok(container(sts).volumeMounts.some((m: { name: string; mountPath: string }) => m.name === 'checkpoints' && m.mountPath === '/checkpoints'));
    const svc = find('Service', 'advclip-coordinator');
    assert.deepEqual(svc.spec.ports.map((p: { name: string; port: number }) => [p.name, p.port]), [['grpc', 50051], ['metrics', 9464]]);
    assert.deepEqual(svc.spec.selector, sts.spec.template.metadata.labels);
    assert.equal(arg(sts, '--listen'), '0.0.0.0:50051');
  });

  it('makes workers find the coordinator by Service DNS and scale without an autoscaler', () => {
    const w = find('Deployment', 'advclip-worker');
    assert.equal(arg(w, '--coordinator'), 'advclip-coordinator:50051');
    assert.equal(manifests.filter((o) => o.kind === 'HorizontalPodAutoscaler').length, 0);
    assert.ok(w.spec.template.spec.terminationGracePeriodSeconds >= 60, 'workers get time to drain');
    const pdb = find('PodDisruptionBudget', 'advclip-worker');
    assert.deepEqual(pdb.spec.selector.matchLabels, w.spec.selector.matchLabels);
  });

  it('probes /readyz and /healthz, requests resources and carries Prometheus annotations', () => {
    for (const o of [find('Deployment', 'advclip-worker'), find('StatefulSet', 'advclip-coordinator')]) {
      const c = container(o);
      assert.deepEqual([c.readinessProbe.httpGet.path, c.livenessProbe.httpGet.path], ['/readyz', '/healthz'], o.metadata.name);
      assert.equal(c.readinessProbe.httpGet.port, 'metrics');
      assert.ok(c.ports.some((p: { name: string; containerPort: number }) => p.name === 'metrics' && p.containerPort === 9464));
      assert.ok(c.resources.requests.cpu && c.resources.requests.memory, `${o.metadata.name} requests`);
      assert.deepEqual(o.spec.template.metadata.annotations, {
        'prometheus.io/scrape': 'true',
        'prometheus.io/port': '9464',
        'prometheus.io/path': '/metrics',
      });
      assert.equal(o.spec.template.spec.securityContext.runAsNonRoot, true);
      assert.equal(arg(o, '--metrics-port'), '9464');
    }
  });

  it('runs NATS with JetStream on a PVC, configured from the generated ConfigMap', () => {
    const nats = find('StatefulSet', 'advclip-nats');
    assert.ok(container(nats).args.includes('-js'));
    assert.deepEqual(nats.spec.volumeClaimTemplates.map((v: K8sObject) => v.metadata.name), ['data']);
    assert.equal(nats.spec.template.spec.volumes[0].configMap.name, 'advclip-nats-config');
    assert.deepEqual(find('Service', 'advclip-nats').spec.ports.map((p: { port: number }) => p.port), [4222, 8222]);
  });
});

function render(overlay: string): K8sObject[] {
  const r = run('kubectl', ['kustomize', `deploy/k8s/overlays/${overlay}`]);
  assert.equal(r.status, 0, `kubectl kustomize ${overlay}: ${r.stderr}`);
  return parseObjects(r.stdout, `kubectl kustomize ${overlay}`);
}

describe('kustomize overlays rendered by kubectl', { skip: skipUnless('kubectl', 'it is not in Debian; kustomize renders the overlays') }, () => {
  const rendered = Object.fromEntries(overlays.map((o) => [o, render(o)])) as Record<(typeof overlays)[number], K8sObject[]>;

  for (const overlay of overlays) {
    it(`${overlay}: every rendered object validates`, async (t) => {
      assert.ok(rendered[overlay].length >= 8);
      await validateAll(rendered[overlay], overlay, t);
    });
  }

  it('cpu: cpu image everywhere, no GPU requested, generated ConfigMaps referenced by their hashed names', () => {
    const objs = rendered.cpu;
    const worker = find('Deployment', 'advclip-worker', objs);
    assert.equal(container(worker).image, 'advclip-cluster:cpu');
    assert.equal(container(find('StatefulSet', 'advclip-coordinator', objs)).image, 'advclip-cluster:cpu');
    assert.equal(container(worker).resources.limits['nvidia.com/gpu'], undefined);
    const configMaps = objs.filter((o) => o.kind === 'ConfigMap').map((o) => o.metadata.name);
    const natsConfig = find('StatefulSet', 'advclip-nats', objs).spec.template.spec.volumes[0].configMap.name;
    assert.ok(configMaps.includes(natsConfig) && natsConfig.startsWith('advclip-nats-config-'), natsConfig);
    const training = find('StatefulSet', 'advclip-coordinator', objs).spec.template.spec.volumes.find((v: { name: string }) => v.name === 'training-config');
    assert.ok(configMaps.includes(training.configMap.name));
    for (const o of objs) assert.equal(o.metadata.labels?.['app.kubernetes.io/part-of'], 'advclip', `${o.kind} ${o.metadata.name}`);
  });

  it('gpu: workers on the gpu image with one nvidia.com/gpu, a GPU node selector and toleration', () => {
    const worker = find('Deployment', 'advclip-worker', rendered.gpu);
    const pod = worker.spec.template.spec;
    assert.equal(container(worker).image, 'advclip-cluster:gpu');
    assert.equal(container(worker).resources.limits['nvidia.com/gpu'], '1');
    assert.deepEqual(pod.nodeSelector, { 'nvidia.com/gpu.present': 'true' });
    assert.deepEqual(pod.tolerations, [{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }]);
    assert.equal(container(find('StatefulSet', 'advclip-coordinator', rendered.gpu)).image, 'advclip-cluster:cpu');
  });

  it('monitoring: a ServiceMonitor that selects the coordinator and worker metrics Services', () => {
    const sm = find('ServiceMonitor', 'advclip', rendered.monitoring);
    assert.deepEqual(sm.spec.endpoints.map((e: { port: string; path: string }) => [e.port, e.path]), [['metrics', '/metrics']]);
    const selected = rendered.monitoring.filter(
      (o) =>
        o.kind === 'Service' &&
        sm.spec.selector.matchExpressions.every((e: { key: string; values: string[] }) => e.values.includes(o.metadata.labels?.[e.key] ?? '')),
    );
    assert.deepEqual(selected.map((o) => o.metadata.name).sort(), ['advclip-coordinator', 'advclip-worker-metrics']);
    for (const svc of selected) assert.ok(svc.spec.ports.some((p: { name: string }) => p.name === 'metrics'));
    assert.equal(rendered.cpu.filter((o) => o.kind === 'ServiceMonitor').length, 0, 'the CRD stays optional');
  });
});
