/**
 * deploy/k8s/README.md's walk-through from an empty kind cluster, checked
 * without a cluster against what it drives: its kind-run overlay renders with
 * the Hub model and the data PVC; its loader Pod fits the schema and the
 * namespace's Pod Security "restricted"; the Secrets it creates hold every
 * name and key the rendered pods read, from files make-certs.sh makes; the
 * objects it scales, follows and port-forwards exist; its `advclip` commands
 * parse. So the section follows the manifests, or this fails.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { adapterCommand } from '../../../services/cli/adapter.ts';
import { parseFlags } from '../../../services/cli/args.ts';
import { evalCommand } from '../../../services/cli/eval.ts';
import { find, k8sRoot, kubectlSkip, podOwners, render, validate, type K8sObject } from './k8s-render.ts';
import { onPath, repoRoot } from './tools.ts';

const readme = readFileSync(join(k8sRoot, 'README.md'), 'utf8');
const section = readme.slice(readme.indexOf('## From an empty kind cluster'), readme.indexOf('\n## ', readme.indexOf('## From an empty kind cluster') + 1));
const script = /```sh\n([\s\S]*?)```/.exec(section)?.[1] ?? '';
/** The body of the heredoc that follows `opener` on its line. */
const heredoc = (opener: string): string => {
  const start = script.indexOf(opener);
  assert.ok(start >= 0, `the walk-through has ${opener}`);
  const body = script.slice(script.indexOf('\n', start) + 1);
  return body.slice(0, body.indexOf('\nEOF\n') + 1);
};
const lines = script.replace(/\\\n\s*/g, ' ').split('\n').map((l) => l.replace(/\s+#.*$/, '').trim());
const IMAGE = /docker build .* -t (\S+) \./.exec(script)?.[1];

function renderKindRun(): K8sObject[] {
  // the overlay names ../deploy/k8s/...: it lives in a folder of the repository root, as in the walk-through
  const dir = join(repoRoot, `kind-run-test-${process.pid}`);
  mkdirSync(dir);
  try {
    writeFileSync(join(dir, 'kustomization.yaml'), heredoc('cat > kind-run/kustomization.yaml'));
    return render(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('the kind walk-through of deploy/k8s/README.md', { skip: kubectlSkip() }, () => {
  it('builds, loads and runs one image tag, never pulled', () => {
    assert.equal(IMAGE, 'advclip-cluster:cpu');
    assert.match(script, new RegExp(`kind load docker-image ${IMAGE}`));
    const objects = renderKindRun();
    for (const { owner, template } of podOwners(objects).filter(({ owner }) => owner.metadata.name.startsWith('advclip-') && owner.kind !== 'StatefulSet')) {
      const c = template.spec.containers[0];
      assert.deepEqual([c.image, c.imagePullPolicy], [IMAGE, 'Never'], `${owner.kind} ${owner.metadata.name}`);
    }
  });

  it('kind-run trains openai/clip-vit-base-patch32 on the data PVC the loader fills', () => {
    const objects = renderKindRun();
    const run = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name.startsWith('advclip-run'))!;
    assert.equal(run.data!.model, 'openai/clip-vit-base-patch32');
    const copied = /kubectl -n advclip cp data\/shapes-colours advclip-data-loader:(\S+)/.exec(script)?.[1];
    assert.equal(copied, run.data!.data, 'the loader copies the data set where the run reads it');
    const pvc = parse(readFileSync(join(k8sRoot, 'components/data-pvc/data-pvc.yaml'), 'utf8')) as K8sObject;
    assert.match(script, /kubectl -n advclip apply -f deploy\/k8s\/components\/data-pvc\/data-pvc\.yaml/);
    find(objects, 'PersistentVolumeClaim', pvc.metadata.name);
    for (const name of ['advclip-coordinator', 'advclip-worker']) {
      const owner = objects.find((o) => o.metadata.name === name && ['Job', 'Deployment'].includes(o.kind))!;
      const spec = owner.spec.template.spec;
      const volume = spec.volumes.find((v: { persistentVolumeClaim?: { claimName: string } }) => v.persistentVolumeClaim?.claimName === pvc.metadata.name);
      assert.ok(volume, `${name} mounts ${pvc.metadata.name}`);
      const mount = spec.containers[0].volumeMounts.find((m: { name: string }) => m.name === volume.name);
      assert.ok(run.data!.data.startsWith(mount.mountPath + '/') && mount.readOnly, `${name}: ${mount.mountPath}, read-only`);
    }
  });

  it('the loader Pod fits the schema and Pod Security "restricted", and mounts the PVC where it copies to', async () => {
    const pod = parse(heredoc("kubectl -n advclip apply -f - <<'EOF'")) as K8sObject;
    await validate(pod);
    const spec = pod.spec;
    const namespace = parse(readFileSync(join(k8sRoot, 'base/namespace.yaml'), 'utf8')) as K8sObject;
    assert.equal(namespace.metadata.labels!['pod-security.kubernetes.io/enforce'], 'restricted');
    assert.equal(spec.securityContext.runAsNonRoot, true);
    assert.equal(spec.securityContext.seccompProfile.type, 'RuntimeDefault');
    for (const c of spec.containers) {
      assert.equal(c.securityContext.allowPrivilegeEscalation, false);
      assert.deepEqual(c.securityContext.capabilities.drop, ['ALL']);
      assert.deepEqual([c.image, c.imagePullPolicy], [IMAGE, 'Never']);
    }
    assert.deepEqual(spec.volumes.map((v: object) => Object.keys(v).filter((k) => k !== 'name')), [['persistentVolumeClaim']], 'restricted admits PVC volumes');
    assert.equal(spec.volumes[0].persistentVolumeClaim.claimName, 'advclip-data');
    const mountPath = spec.containers[0].volumeMounts[0].mountPath;
    assert.match(script, new RegExp(`advclip-data-loader:${mountPath}/`));
  });

  it('creates every Secret and key the rendered pods read, from files make-certs.sh makes', { skip: onPath('openssl') ? false : 'openssl missing' }, () => {
    const created = new Map<string, Set<string>>();
    const files: string[] = [];
    for (const line of lines.filter((l) => l.startsWith('kubectl -n advclip create secret generic '))) {
      const name = line.split(/\s+/)[6];
      const keys = [...line.matchAll(/--from-(?:file|literal)=([^=\s]+)=(\S+)/g)];
      created.set(name, new Set(keys.map((k) => k[1])));
      files.push(...keys.filter((k) => k[0].startsWith('--from-file')).map((k) => k[2]));
    }
    const needed = new Map<string, Set<string>>();
    const need = (name: string, key?: string) => {
      if (!needed.has(name)) needed.set(name, new Set());
      if (key) needed.get(name)!.add(key);
    };
    for (const { template } of podOwners(renderKindRun())) {
      const spec = template.spec;
      for (const v of spec.volumes ?? []) if (v.secret && !v.secret.optional) for (const key of v.secret.items?.map((i: { key: string }) => i.key) ?? ['tls.crt', 'tls.key', 'ca.crt']) need(v.secret.secretName, key);
      for (const c of spec.containers) {
        for (const e of c.env ?? []) if (e.valueFrom?.secretKeyRef && !e.valueFrom.secretKeyRef.optional) need(e.valueFrom.secretKeyRef.name, e.valueFrom.secretKeyRef.key);
      }
    }
    for (const [name, keys] of needed) {
      assert.ok(created.has(name), `the walk-through creates Secret ${name}`);
      assert.deepEqual([...keys].filter((k) => !created.get(name)!.has(k)), [], `Secret ${name}'s keys`);
    }
    const pulled = /\{\.data\.([\w-]+)\}/.exec(script)?.[1];
    assert.ok(pulled && created.get('advclip-nats-auth')?.has(pulled), 'adapter pull reads a key the walk-through created');

    const out = /deploy\/certs\/make-certs\.sh "\$PWD\/([\w-]+)"/.exec(script)?.[1];
    assert.ok(out, 'make-certs.sh writes into a folder the secrets read from');
    const dir = mkdtempSync(join(tmpdir(), 'advclip-kind-certs-'));
    try {
      const r = spawnSync(join(repoRoot, 'deploy/certs/make-certs.sh'), [join(dir, out)], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      for (const file of files) assert.ok(existsSync(join(dir, file)), `make-certs.sh makes ${file}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('scales, follows, waits for and port-forwards objects that exist', () => {
    const objects = renderKindRun();
    const refs: Record<string, string> = { deployment: 'Deployment', job: 'Job', svc: 'Service' };
    for (const [, kind, name] of script.matchAll(/\b(deployment|job|svc)\/([\w-]+)/g)) find(objects, refs[kind], name);
    const [, svc, port] = /port-forward svc\/([\w-]+) \d+:(\d+)/.exec(script)!;
    assert.ok(find(objects, 'Service', svc).spec.ports.some((p: { port: number }) => p.port === Number(port)));
  });

  it('its advclip commands parse', () => {
    const commands = lines.filter((l) => l.includes('./bin/advclip.mjs')).map((l) => l.slice(l.indexOf('./bin/advclip.mjs') + '/bin/advclip.mjs'.length + 1).trim().split(/\s+/));
    assert.deepEqual(commands.map((c) => c[0]), ['adapter', 'eval']);
    for (const argv of commands) {
      const flags = parseFlags(argv[0] === 'adapter' ? adapterCommand : evalCommand, argv.slice(1));
      if (argv[0] === 'adapter') assert.deepEqual([argv[1], flags['base-model']], ['pull', 'openai/clip-vit-base-patch32']);
      else assert.equal(flags.model, 'openai/clip-vit-base-patch32');
    }
  });
});
