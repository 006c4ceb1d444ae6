import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { describe, it } from 'node:test';
import { find, k8sRoot, kubectlSkip, overlays, parseObjects, podOwners, render, validate, validateAll, type K8sObject } from './k8s-render.ts';
import { repoRoot } from './tools.ts';

const isKustomization = (o: K8sObject) => o.apiVersion.startsWith('kustomize.config.k8s.io/');

function yamlFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? yamlFiles(join(dir, e.name)) : /\.ya?ml$/.test(e.name) ? [join(dir, e.name)] : [],
  );
}

// JSON-patch files (lists of operations) are not objects; everything else is.
const sources = new Map(
  yamlFiles(k8sRoot).map((f) => [relative(repoRoot, f), parseObjects(readFileSync(f, 'utf8'), f).filter((o) => !Array.isArray(o) && typeof o.apiVersion === 'string')]),
);
const manifests = [...sources.values()].flat().filter((o) => !isKustomization(o));
const container = (o: K8sObject) => o.spec.template.spec.containers[0];
const arg = (o: K8sObject, name: string) =>
  (container(o).args as string[]).find((a) => a.startsWith(`${name}=`))?.slice(name.length + 1);
const envOf = (o: K8sObject, name: string) => container(o).env.find((e: { name: string }) => e.name === name);

describe('Kubernetes manifests under deploy/k8s', () => {
  it('validate against the Kubernetes schemas (kubernetes-models; the Prometheus Operator CRDs by shape)', async () => {
    assert.ok(manifests.length >= 12, `${manifests.length} manifests`);
    await validateAll(manifests, 'deploy/k8s');
  });

  it('the validators are not no-ops: a broken Deployment and a broken PrometheusRule are refused', async () => {
    const broken = structuredClone(find(manifests, 'Deployment', 'advclip-worker'));
    broken.spec.replicas = 'two';
    await assert.rejects(validate(broken), /replicas/);
    const rule = structuredClone(find(manifests, 'PrometheusRule', 'advclip'));
    rule.spec.groups[0].rules[0].for = 'soon';
    await assert.rejects(validate(rule), /for/);
  });

  it('every kustomization names files and directories that exist', () => {
    for (const [file, objects] of sources) {
      for (const k of objects.filter(isKustomization) as Array<K8sObject & Record<string, any>>) {
        const patchFiles = (k.patches ?? []).flatMap((p: { path?: string }) => (p.path ? [p.path] : []));
        for (const ref of [...(k.resources ?? []), ...(k.components ?? []), ...patchFiles]) {
          assert.ok(existsSync(join(repoRoot, dirname(file), ref)), `${file}: ${ref}`);
        }
      }
    }
  });

  it('ship no Secret values, only references to them', () => {
    assert.equal(manifests.filter((o) => o.kind === 'Secret').length, 0);
    const text = [...sources.keys()].map((f) => readFileSync(join(repoRoot, f), 'utf8')).join('\n');
    assert.doesNotMatch(text, /password:\s*\S/i);
    assert.doesNotMatch(text, /hf_[A-Za-z0-9]{8,}/, 'no Hub token');
    for (const [kind, name] of [['Job', 'advclip-coordinator'], ['Deployment', 'advclip-worker']]) {
      const o = find(manifests, kind, name);
      const pod = o.spec.template.spec;
      const secretRefs = Object.fromEntries(pod.containers[0].env.filter((e: any) => e.valueFrom?.secretKeyRef).map((e: any) => [e.name, e.valueFrom.secretKeyRef.name]));
      assert.deepEqual(secretRefs, { NATS_USER: 'advclip-nats-auth', NATS_PASSWORD: 'advclip-nats-auth', HF_TOKEN: 'advclip-hf-token' });
      assert.equal(envOf(o, 'HF_TOKEN').valueFrom.secretKeyRef.optional, true, 'public models need no token Secret');
      assert.ok(pod.containers[0].env.every((e: any) => e.valueFrom || !/password|token|secret/i.test(e.name)), 'no literal secret in env');
      assert.equal(pod.volumes.find((v: any) => v.name === 'tls').secret.secretName, `${name}-tls`);
    }
  });

  it("gives each worker as many native threads as its pod requests CPUs, not the node's every core", () => {
    const worker = container(find(manifests, 'Deployment', 'advclip-worker'));
    const threads = worker.env.find((e: any) => e.name === 'ADVCLIP_NATIVE_THREADS');
    assert.deepEqual(threads?.valueFrom?.resourceFieldRef, { containerName: worker.name, resource: 'requests.cpu', divisor: '1' });
    assert.ok(worker.resources.requests.cpu, 'the request it reads is set');
  });

  it('runs the coordinator as a Job that restarts on failure and resumes from checkpoints on a PVC it does not own', () => {
    assert.equal(manifests.filter((o) => o.kind === 'StatefulSet' && o.metadata.name === 'advclip-coordinator').length, 0, 'not a StatefulSet: exit 0 is the end of a run');
    const job = find(manifests, 'Job', 'advclip-coordinator');
    const pod = job.spec.template.spec;
    assert.equal(pod.restartPolicy, 'OnFailure');
    assert.ok(job.spec.backoffLimit >= 3, 'a few crashes are retried');
    assert.equal(job.spec.completions, 1);
    assert.equal(job.spec.ttlSecondsAfterFinished, undefined, 'a finished Job (and its logs) stays until deleted');
    assert.equal(arg(job, '--checkpoint-dir'), '/checkpoints');
    const mount = container(job).volumeMounts.find((m: { mountPath: string }) => m.mountPath === '/checkpoints');
    const claim = pod.volumes.find((v: { name: string }) => v.name === mount.name).persistentVolumeClaim.claimName;
    assert.equal(find(manifests, 'PersistentVolumeClaim', claim).spec.accessModes[0], 'ReadWriteOnce');
    const svc = find(manifests, 'Service', 'advclip-coordinator');
    assert.deepEqual(svc.spec.ports.map((p: { name: string; port: number }) => [p.name, p.port]), [['grpc', 50051], ['metrics', 9464]]);
    assert.deepEqual(svc.spec.selector, job.spec.template.metadata.labels);
    assert.equal(arg(job, '--listen'), '0.0.0.0:50051');
  });

  it('makes workers find the coordinator by Service DNS and scale without an autoscaler', () => {
    const w = find(manifests, 'Deployment', 'advclip-worker');
    assert.equal(arg(w, '--coordinator'), 'advclip-coordinator:50051');
    assert.equal(manifests.filter((o) => o.kind === 'HorizontalPodAutoscaler').length, 0);
    assert.ok(Number.isInteger(w.spec.replicas), 'replicas is a plain field kubectl scale sets');
    assert.ok(w.spec.template.spec.terminationGracePeriodSeconds >= 60, 'workers get time to drain');
    const pdb = find(manifests, 'PodDisruptionBudget', 'advclip-worker');
    assert.deepEqual(pdb.spec.selector.matchLabels, w.spec.selector.matchLabels);
  });

  it('coordinator and workers read the model and data from one ConfigMap; the Hub cache is writable', () => {
    for (const o of [find(manifests, 'Job', 'advclip-coordinator'), find(manifests, 'Deployment', 'advclip-worker')]) {
      assert.equal(arg(o, '--model'), '$(ADVCLIP_MODEL)');
      assert.equal(arg(o, '--data'), '$(ADVCLIP_DATA)');
      assert.deepEqual(envOf(o, 'ADVCLIP_MODEL').valueFrom.configMapKeyRef, { name: 'advclip-run', key: 'model' });
      assert.deepEqual(envOf(o, 'ADVCLIP_DATA').valueFrom.configMapKeyRef, { name: 'advclip-run', key: 'data' });
      const hfHome = envOf(o, 'HF_HOME').value as string;
      const mount = container(o).volumeMounts.find((m: { mountPath: string }) => hfHome.startsWith(`${m.mountPath}/`));
      assert.ok(mount && !mount.readOnly, `${o.metadata.name}: HF_HOME ${hfHome} is on a writable volume`);
    }
  });

  it('probes /readyz and /healthz, with a startupProbe long enough for a model download', () => {
    for (const o of [find(manifests, 'Deployment', 'advclip-worker'), find(manifests, 'Job', 'advclip-coordinator')]) {
      const c = container(o);
      assert.deepEqual([c.readinessProbe.httpGet.path, c.livenessProbe.httpGet.path, c.startupProbe.httpGet.path], ['/readyz', '/healthz', '/healthz'], o.metadata.name);
      assert.ok(c.startupProbe.periodSeconds * c.startupProbe.failureThreshold >= 600, `${o.metadata.name}: ≥ 10 min to load a model`);
      assert.equal(c.livenessProbe.initialDelaySeconds, undefined, 'the startupProbe holds liveness back instead');
      assert.ok(c.ports.some((p: { name: string; containerPort: number }) => p.name === 'metrics' && p.containerPort === 9464));
      assert.deepEqual(o.spec.template.metadata.annotations, { 'prometheus.io/scrape': 'true', 'prometheus.io/port': '9464', 'prometheus.io/path': '/metrics' });
      assert.equal(arg(o, '--metrics-port'), '9464');
    }
  });

  it('runs NATS with JetStream on a PVC, configured from the generated ConfigMap', () => {
    const nats = find(manifests, 'StatefulSet', 'advclip-nats');
    assert.ok(container(nats).args.includes('-js'));
    assert.deepEqual(nats.spec.volumeClaimTemplates.map((v: K8sObject) => v.metadata.name), ['data']);
    assert.equal(nats.spec.template.spec.volumes[0].configMap.name, 'advclip-nats-config');
    assert.deepEqual(find(manifests, 'Service', 'advclip-nats').spec.ports.map((p: { port: number }) => p.port), [4222, 8222]);
  });

  it('NATS serves TLS with the Secret advclip-nats-tls; coordinator and workers connect over tls:// and verify it with the CA', () => {
    const nats = find(manifests, 'StatefulSet', 'advclip-nats');
    const mountOf = (o: K8sObject, volume: string) => container(o).volumeMounts.find((m: { name: string }) => m.name === volume);
    const certs = mountOf(nats, 'tls');
    assert.equal(nats.spec.template.spec.volumes.find((v: { name: string }) => v.name === 'tls').secret.secretName, 'advclip-nats-tls');
    assert.equal(envOf(nats, 'NATS_TLS_CERT').value, `${certs.mountPath}/tls.crt`);
    assert.equal(envOf(nats, 'NATS_TLS_KEY').value, `${certs.mountPath}/tls.key`);
    const conf = readFileSync(join(repoRoot, 'deploy/nats/nats.conf'), 'utf8');
    assert.match(conf, /tls \{\s*cert_file: \$NATS_TLS_CERT\s*key_file: \$NATS_TLS_KEY/);
    for (const o of [find(manifests, 'Job', 'advclip-coordinator'), find(manifests, 'Deployment', 'advclip-worker')]) {
      assert.equal(arg(o, '--nats'), 'tls://advclip-nats:4222', o.metadata.name);
      assert.equal(arg(o, '--nats-ca'), `${mountOf(o, 'tls').mountPath}/ca.crt`, `${o.metadata.name} verifies NATS with the CA of its own TLS volume`);
    }
  });
});

describe('kustomize overlays rendered by kubectl', { skip: kubectlSkip() }, () => {
  const rendered = Object.fromEntries(overlays.map((o) => [o, render(o)])) as Record<string, K8sObject[]>;

  it('the overlays are cert-manager, cpu, gpu, kind and monitoring', () => assert.deepEqual(overlays, ['cert-manager', 'cpu', 'gpu', 'kind', 'monitoring']));

  it('cert-manager: a CA issued in the cluster, the coordinator and NATS Secrets as Certificates, and one certificate per worker pod naming the pod', () => {
    const objs = rendered['cert-manager'];
    const certificate = (name: string) => find(objs, 'Certificate', name).spec;
    assert.equal(certificate('advclip-ca').isCA, true);
    assert.deepEqual(find(objs, 'Issuer', 'advclip-ca').spec, { ca: { secretName: certificate('advclip-ca').secretName } });
    const secretOf = (kind: string, name: string) => find(objs, kind, name).spec.template.spec.volumes.find((v: { name: string }) => v.name === 'tls').secret.secretName;
    assert.equal(certificate('advclip-coordinator').secretName, secretOf('Job', 'advclip-coordinator'));
    assert.equal(certificate('advclip-nats').secretName, secretOf('StatefulSet', 'advclip-nats'));
    assert.ok(certificate('advclip-coordinator').dnsNames.includes('advclip-coordinator'), 'workers dial advclip-coordinator:50051');
    assert.ok(certificate('advclip-nats').dnsNames.includes('advclip-nats'), 'clients dial tls://advclip-nats:4222');
    for (const name of ['advclip-coordinator', 'advclip-nats']) assert.equal(certificate(name).issuerRef.name, 'advclip-ca');
    const worker = find(objs, 'Deployment', 'advclip-worker');
    const tls = worker.spec.template.spec.volumes.find((v: { name: string }) => v.name === 'tls');
    assert.equal(tls.secret, undefined, 'no shared worker Secret');
    assert.equal(tls.csi.driver, 'csi.cert-manager.io');
    const attributes = tls.csi.volumeAttributes as Record<string, string>;
    assert.equal(attributes['csi.cert-manager.io/issuer-name'], 'advclip-ca');
    assert.equal(attributes['csi.cert-manager.io/uri-sans'], 'spiffe://advclip/worker/${POD_NAME}', 'the identity the coordinator admits by: the SAN URI');
    assert.match(attributes['csi.cert-manager.io/key-usages'], /client auth/);
    assert.equal(Number(attributes['csi.cert-manager.io/fs-group']), worker.spec.template.spec.securityContext.fsGroup);
    assert.deepEqual([arg(worker, '--tls-cert'), arg(worker, '--tls-key'), arg(worker, '--tls-ca')], ['/certs/tls.crt', '/certs/tls.key', '/certs/ca.crt'], 'the file names csi-driver writes by default');
  });

  for (const overlay of overlays) {
    it(`${overlay}: every rendered object validates, in the namespace advclip, labelled part-of advclip`, async () => {
      const objs = rendered[overlay];
      assert.ok(objs.length >= 15);
      await validateAll(objs, overlay);
      for (const o of objs) {
        assert.equal(o.metadata.labels?.['app.kubernetes.io/part-of'], 'advclip', `${o.kind} ${o.metadata.name}`);
        if (o.kind !== 'Namespace') assert.equal(o.metadata.namespace, 'advclip', `${o.kind} ${o.metadata.name}`);
      }
      for (const { owner, template } of podOwners(objs)) assert.equal(template.metadata.labels['app.kubernetes.io/part-of'], 'advclip', `${owner.metadata.name} pods`);
    });
  }

  it('cpu: the image from the placeholder registry and tag of the images: entry; generated ConfigMaps by their hashed names', () => {
    const objs = rendered.cpu;
    const worker = find(objs, 'Deployment', 'advclip-worker');
    const job = find(objs, 'Job', 'advclip-coordinator');
    assert.equal(container(worker).image, 'registry.example.com/advclip/advclip-cluster:0.1.0-cpu');
    assert.equal(container(job).image, container(worker).image);
    assert.equal(container(worker).resources.limits['nvidia.com/gpu'], undefined);
    const configMaps = objs.filter((o) => o.kind === 'ConfigMap').map((o) => o.metadata.name);
    const natsConfig = find(objs, 'StatefulSet', 'advclip-nats').spec.template.spec.volumes[0].configMap.name;
    assert.ok(configMaps.includes(natsConfig) && natsConfig.startsWith('advclip-nats-config-'), natsConfig);
    const run = envOf(worker, 'ADVCLIP_MODEL').valueFrom.configMapKeyRef.name;
    assert.ok(run.startsWith('advclip-run-') && configMaps.includes(run), run);
    assert.equal(objs.find((o) => o.metadata.name === run)!.data!.model, '/models/clip-small', 'the model in the image by default');
  });

  it('gpu: workers on the gpu image with exactly one nvidia.com/gpu requested and limited, on GPU nodes', () => {
    const worker = find(rendered.gpu, 'Deployment', 'advclip-worker');
    const pod = worker.spec.template.spec;
    assert.equal(container(worker).image, 'registry.example.com/advclip/advclip-cluster:0.1.0-gpu');
    assert.equal(container(worker).resources.requests['nvidia.com/gpu'], '1');
    assert.equal(container(worker).resources.limits['nvidia.com/gpu'], '1');
    assert.deepEqual(pod.nodeSelector, { 'nvidia.com/gpu.present': 'true' });
    assert.deepEqual(pod.tolerations, [{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }]);
    const job = find(rendered.gpu, 'Job', 'advclip-coordinator');
    assert.equal(container(job).image, 'registry.example.com/advclip/advclip-cluster:0.1.0-cpu');
    assert.equal(container(job).resources.limits['nvidia.com/gpu'], undefined);
  });

  it('kind: the locally loaded image, never pulled, and openai/clip-vit-base-patch32 from the Hub', () => {
    const objs = rendered.kind;
    for (const o of [find(objs, 'Deployment', 'advclip-worker'), find(objs, 'Job', 'advclip-coordinator')]) {
      assert.equal(container(o).image, 'advclip-cluster:cpu');
      assert.equal(container(o).imagePullPolicy, 'Never');
      const run = objs.find((c) => c.metadata.name === envOf(o, 'ADVCLIP_MODEL').valueFrom.configMapKeyRef.name)!;
      assert.equal(run.data!.model, 'openai/clip-vit-base-patch32');
    }
  });

  it('monitoring: ServiceMonitor, PrometheusRule and dashboard carry the labels kube-prometheus-stack selects by', () => {
    const objs = rendered.monitoring;
    const sm = find(objs, 'ServiceMonitor', 'advclip');
    assert.equal(sm.metadata.labels!.release, 'kube-prometheus-stack');
    assert.equal(find(objs, 'PrometheusRule', 'advclip').metadata.labels!.release, 'kube-prometheus-stack');
    assert.equal(find(objs, 'ConfigMap', 'advclip-grafana-dashboard').metadata.labels!.grafana_dashboard, '1');
    assert.deepEqual(sm.spec.endpoints.map((e: { port: string; path: string }) => [e.port, e.path]), [['metrics', '/metrics']]);
    const selected = objs.filter(
      (o) => o.kind === 'Service' && sm.spec.selector.matchExpressions.every((e: { key: string; values: string[] }) => e.values.includes(o.metadata.labels?.[e.key] ?? '')),
    );
    assert.deepEqual(selected.map((o) => o.metadata.name).sort(), ['advclip-coordinator', 'advclip-worker-metrics']);
    for (const svc of selected) assert.ok(svc.spec.ports.some((p: { name: string }) => p.name === 'metrics'));
    assert.equal(rendered.cpu.filter((o) => o.apiVersion.startsWith('monitoring.coreos.com/')).length, 0, 'the CRDs stay optional');
  });

  it('a data PVC component mounts one claim read-only into the coordinator and every worker', () => {
    // components/data-pvc is opt-in; render it on top of cpu the way a user's overlay would
    const objs = renderWith(['../cpu'], ['../../components/data-pvc']);
    const claim = find(objs, 'PersistentVolumeClaim', 'advclip-data');
    for (const o of [find(objs, 'Deployment', 'advclip-worker'), find(objs, 'Job', 'advclip-coordinator')]) {
      const vol = o.spec.template.spec.volumes.find((v: any) => v.persistentVolumeClaim?.claimName === claim.metadata.name);
      assert.ok(vol?.persistentVolumeClaim.readOnly, o.metadata.name);
      const mount = container(o).volumeMounts.find((m: { name: string }) => m.name === vol.name);
      assert.equal(mount.readOnly, true);
      const run = objs.find((c) => c.metadata.name === envOf(o, 'ADVCLIP_DATA').valueFrom.configMapKeyRef.name)!;
      assert.ok(run.data!.data.startsWith(`${mount.mountPath}/`), `data ${run.data!.data} is on the claim`);
    }
  });
});

/** Renders a throw-away overlay of `resources` and `components` (paths from deploy/k8s/overlays/x), for opt-in components. */
function renderWith(resources: string[], components: string[]): K8sObject[] {
  const dir = mkdtempSync(join(tmpdir(), 'advclip-kustomize-'));
  try {
    const rel = (p: string) => relative(dir, join(k8sRoot, 'overlays', 'x', p));
    writeFileSync(join(dir, 'kustomization.yaml'), JSON.stringify({ resources: resources.map(rel), components: components.map(rel) }));
    return render(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
