/**
 * Policies over the rendered overlays, read as an operator (or the
 * admission controller) would: Pod Security "restricted", resources and
 * probes, NetworkPolicy reachability, and — the bug that once shipped —
 * whether each pod's user can read every file it mounts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { find, kubectlSkip, overlays, podOwners, render, type K8sObject } from './k8s-render.ts';

/** Volume types Pod Security "restricted" allows. */
const RESTRICTED_VOLUMES = ['configMap', 'csi', 'downwardAPI', 'emptyDir', 'ephemeral', 'persistentVolumeClaim', 'projected', 'secret'];
const ADVCLIP_IMAGE = /advclip-cluster/;

interface PodIdentity {
  readonly uid: number;
  readonly groups: readonly number[];
  readonly fsGroup: number | undefined;
}

function identityOf(pod: any, container: any): PodIdentity {
  const uid = container.securityContext?.runAsUser ?? pod.securityContext?.runAsUser;
  const gid = container.securityContext?.runAsGroup ?? pod.securityContext?.runAsGroup ?? 0;
  const fsGroup = pod.securityContext?.fsGroup;
  assert.ok(Number.isInteger(uid), 'runAsUser must be set to check file access (the image default is not visible here)');
  return { uid, groups: [gid, ...(fsGroup !== undefined ? [fsGroup] : []), ...(pod.securityContext?.supplementalGroups ?? [])], fsGroup };
}

/**
 * Whether `who` can read the files of a secret/configMap/projected volume,
 * as the kubelet writes them: owned by root, group root or (with fsGroup)
 * fsGroup, mode = the item's mode or defaultMode (default 0644); with
 * fsGroup the kubelet adds group read (0440) on these read-only volumes.
 * emptyDir is world-writable; a PVC's ownership is only known with fsGroup.
 */
export function unreadable(volume: any, who: PodIdentity): string | null {
  const kind = Object.keys(volume).find((k) => k !== 'name')!;
  if (kind === 'emptyDir') return null;
  if (kind === 'persistentVolumeClaim') return who.fsGroup === undefined ? 'a PVC without fsGroup: its files belong to whoever made them' : null;
  if (kind === 'csi') return unreadableCsi(volume.csi, who);
  if (!['secret', 'configMap', 'projected'].includes(kind)) return `volume type ${kind} is not checked`;
  const source = volume[kind];
  const modes: number[] = [source.defaultMode ?? 0o644];
  for (const item of source.items ?? []) if (item.mode !== undefined) modes.push(item.mode);
  for (const s of source.sources ?? []) for (const item of Object.values<any>(s).flatMap((x) => x.items ?? [])) if (item.mode !== undefined) modes.push(item.mode);
  const group = who.fsGroup ?? 0;
  for (const raw of modes) {
    const mode = who.fsGroup !== undefined ? raw | 0o440 : raw;
    const readable = (who.uid === 0 && mode & 0o400) || (who.groups.includes(group) && mode & 0o040) || mode & 0o004;
    if (!readable) return `mode 0${raw.toString(8)} owned by 0:${group} (after fsGroup 0${mode.toString(8)}) is not readable by uid ${who.uid} groups ${who.groups.join(',')}`;
  }
  return null;
}

/**
 * cert-manager's csi-driver writes the pod's key and certificate owned by
 * root, readable by root only, unless `csi.cert-manager.io/fs-group` names a
 * group: then that group reads them, which the pod's user is in only when it
 * is the pod's fsGroup (or another of its groups). Other CSI drivers are not checked.
 */
function unreadableCsi(csi: any, who: PodIdentity): string | null {
  if (csi.driver !== 'csi.cert-manager.io') return `csi driver ${csi.driver} is not checked`;
  const raw = csi.volumeAttributes?.['csi.cert-manager.io/fs-group'];
  if (raw === undefined) return who.uid === 0 ? null : `csi.cert-manager.io without fs-group: its files are root's, not readable by uid ${who.uid}`;
  const group = Number(raw);
  if (!who.groups.includes(group)) return `csi.cert-manager.io/fs-group ${raw} is not a group of uid ${who.uid} (groups ${who.groups.join(',')})`;
  return null;
}

// ---- NetworkPolicy: does a connection from (namespace, labels) reach a pod's port?
interface Peer {
  readonly namespace: string;
  readonly namespaceLabels: Record<string, string>;
  readonly labels: Record<string, string>;
}

function matches(selector: any, labels: Record<string, string>): boolean {
  if (!selector) return true;
  const byLabels = Object.entries(selector.matchLabels ?? {}).every(([k, v]) => labels[k] === v);
  const byExpr = (selector.matchExpressions ?? []).every((e: any) => {
    const has = e.key in labels;
    switch (e.operator) {
      case 'In': return has && e.values.includes(labels[e.key]);
      case 'NotIn': return !has || !e.values.includes(labels[e.key]);
      case 'Exists': return has;
      case 'DoesNotExist': return !has;
      default: throw new Error(`operator ${e.operator}`);
    }
  });
  return byLabels && byExpr;
}

function allowed(policies: K8sObject[], namespace: string, target: Record<string, string>, port: number, from: Peer): boolean {
  const selecting = policies.filter((p) => p.metadata.namespace === namespace && p.spec.policyTypes.includes('Ingress') && matches(p.spec.podSelector, target));
  if (selecting.length === 0) return true; // not isolated
  return selecting.some((p) =>
    (p.spec.ingress ?? []).some((rule: any) => {
      const portOk = !rule.ports || rule.ports.some((q: any) => q.port === port);
      const peerOk = !rule.from || rule.from.some((f: any) => {
        if (f.ipBlock) return false;
        const nsOk = f.namespaceSelector ? matches(f.namespaceSelector, from.namespaceLabels) : from.namespace === namespace;
        return nsOk && matches(f.podSelector, from.labels);
      });
      return portOk && peerOk;
    }),
  );
}

describe('policies over every rendered overlay', { skip: kubectlSkip() }, () => {
  const rendered = Object.fromEntries(overlays.map((o) => [o, render(o)])) as Record<string, K8sObject[]>;

  for (const overlay of overlays) {
    const objs = rendered[overlay];
    const pods = podOwners(objs);
    const eachContainer = (check: (c: any, pod: any, owner: K8sObject) => void) => {
      assert.ok(pods.length >= 3, `${overlay}: ${pods.length} pod owners`);
      for (const { owner, template } of pods) {
        for (const c of [...(template.spec.initContainers ?? []), ...template.spec.containers]) check(c, template.spec, owner);
      }
    };

    describe(overlay, () => {
      it('the namespace enforces Pod Security "restricted"', () => {
        const ns = find(objs, 'Namespace', 'advclip');
        assert.equal(ns.metadata.labels!['pod-security.kubernetes.io/enforce'], 'restricted');
      });

      it('pods meet "restricted": non-root, no escalation, no capabilities, RuntimeDefault seccomp, allowed volumes only', () => {
        eachContainer((c, pod, owner) => {
          const where = `${owner.kind} ${owner.metadata.name}/${c.name}`;
          assert.equal(c.securityContext?.runAsNonRoot ?? pod.securityContext?.runAsNonRoot, true, `${where}: runAsNonRoot`);
          assert.ok((c.securityContext?.runAsUser ?? pod.securityContext?.runAsUser) > 0, `${where}: a non-zero runAsUser`);
          assert.equal(c.securityContext?.allowPrivilegeEscalation, false, `${where}: allowPrivilegeEscalation`);
          assert.deepEqual(c.securityContext?.capabilities?.drop, ['ALL'], `${where}: drops ALL capabilities`);
          assert.equal(c.securityContext?.capabilities?.add, undefined, `${where}: adds none`);
          assert.notEqual(c.securityContext?.privileged, true, where);
          assert.equal((c.securityContext?.seccompProfile ?? pod.securityContext?.seccompProfile)?.type, 'RuntimeDefault', `${where}: seccomp`);
          assert.ok(!pod.hostNetwork && !pod.hostPID && !pod.hostIPC, `${where}: no host namespaces`);
          for (const p of c.ports ?? []) assert.equal(p.hostPort, undefined, `${where}: no hostPort`);
          for (const v of pod.volumes ?? []) assert.ok(RESTRICTED_VOLUMES.includes(Object.keys(v).find((k) => k !== 'name')!), `${where}: volume ${v.name}`);
        });
      });

      it('root filesystems are read-only; every writable path is a volume', () => {
        eachContainer((c, _pod, owner) => assert.equal(c.securityContext?.readOnlyRootFilesystem, true, `${owner.metadata.name}/${c.name}`));
      });

      it('every container requests CPU and memory and has a memory limit', () => {
        eachContainer((c, _pod, owner) => {
          const where = `${owner.metadata.name}/${c.name}`;
          assert.ok(c.resources?.requests?.cpu && c.resources?.requests?.memory, `${where}: requests`);
          assert.ok(c.resources?.limits?.memory, `${where}: memory limit`);
        });
      });

      it('every long-running container has readiness and liveness probes; advclip containers a startupProbe for model loading', () => {
        eachContainer((c, _pod, owner) => {
          const where = `${owner.metadata.name}/${c.name}`;
          assert.ok(c.readinessProbe && c.livenessProbe, `${where}: readiness and liveness`);
          if (ADVCLIP_IMAGE.test(c.image)) assert.ok(c.startupProbe?.httpGet, `${where}: startupProbe`);
        });
      });

      it("every file a pod mounts is readable by the pod's user (runAsUser, runAsGroup, fsGroup, defaultMode)", () => {
        eachContainer((c, pod, owner) => {
          const who = identityOf(pod, c);
          for (const m of c.volumeMounts ?? []) {
            const claimTemplate = (owner.spec.volumeClaimTemplates ?? []).find((t: K8sObject) => t.metadata.name === m.name);
            const volume = claimTemplate ? { name: m.name, persistentVolumeClaim: { claimName: m.name } } : pod.volumes.find((v: any) => v.name === m.name);
            assert.ok(volume, `${owner.metadata.name}/${c.name}: volume ${m.name} exists`);
            const problem = unreadable(volume, who);
            assert.equal(problem, null, `${owner.metadata.name}/${c.name}: ${m.mountPath} (${m.name}): ${problem}`);
          }
        });
      });

      it('NetworkPolicies: NATS from advclip pods, gRPC from workers, metrics from the monitoring namespace', () => {
        const policies = objs.filter((o) => o.kind === 'NetworkPolicy');
        const labelsOf = (kind: string, name: string) => find(objs, kind, name).spec.template.metadata.labels as Record<string, string>;
        const [coordinator, worker, nats] = [labelsOf('Job', 'advclip-coordinator'), labelsOf('Deployment', 'advclip-worker'), labelsOf('StatefulSet', 'advclip-nats')];
        const inNs = (labels: Record<string, string>): Peer => ({ namespace: 'advclip', namespaceLabels: { 'kubernetes.io/metadata.name': 'advclip' }, labels });
        const prometheus: Peer = { namespace: 'monitoring', namespaceLabels: { 'kubernetes.io/metadata.name': 'monitoring' }, labels: { 'app.kubernetes.io/name': 'prometheus' } };
        const stranger: Peer = { namespace: 'default', namespaceLabels: { 'kubernetes.io/metadata.name': 'default' }, labels: { 'app.kubernetes.io/part-of': 'advclip' } };
        const puller = inNs({ 'app.kubernetes.io/part-of': 'advclip', run: 'adapter-pull' });
        const can = (target: Record<string, string>, port: number, from: Peer) => allowed(policies, 'advclip', target, port, from);
        const cases: Array<[string, boolean, boolean]> = [
          ['worker → NATS', can(nats, 4222, inNs(worker)), true],
          ['coordinator → NATS', can(nats, 4222, inNs(coordinator)), true],
          ['adapter pull pod → NATS', can(nats, 4222, puller), true],
          ['unlabelled pod in advclip → NATS', can(nats, 4222, inNs({ app: 'x' })), false],
          ['another namespace → NATS', can(nats, 4222, stranger), false],
          ['worker → coordinator gRPC', can(coordinator, 50051, inNs(worker)), true],
          ['NATS → coordinator gRPC', can(coordinator, 50051, inNs(nats)), false],
          ['another namespace → coordinator gRPC', can(coordinator, 50051, stranger), false],
          ['monitoring → coordinator metrics', can(coordinator, 9464, prometheus), true],
          ['monitoring → worker metrics', can(worker, 9464, prometheus), true],
          ['monitoring → NATS monitor', can(nats, 8222, prometheus), true],
          ['worker → coordinator metrics', can(coordinator, 9464, inNs(worker)), false],
          ['monitoring → coordinator gRPC', can(coordinator, 50051, prometheus), false],
          ['monitoring → NATS clients', can(nats, 4222, prometheus), false],
        ];
        for (const [what, got, want] of cases) assert.equal(got, want, what);
      });
    });
  }

  it('the readability check catches the shipped bug: uid 1000, a 0400 Secret and no fsGroup', () => {
    const tls = { name: 'tls', secret: { secretName: 'x', defaultMode: 0o400 } };
    assert.match(unreadable(tls, { uid: 1000, groups: [1000], fsGroup: undefined }) ?? '', /mode 0400 owned by 0:0 .* not readable by uid 1000/);
    assert.equal(unreadable(tls, { uid: 1000, groups: [1000, 1000], fsGroup: 1000 }), null, 'fsGroup makes it root:1000 0440');
    assert.equal(unreadable({ name: 'c', configMap: { name: 'x' } }, { uid: 1000, groups: [1000], fsGroup: undefined }), null, '0644 is world-readable');
    assert.match(unreadable({ name: 'c', configMap: { name: 'x', items: [{ key: 'k', path: 'k', mode: 0o600 }] } }, { uid: 1000, groups: [1000], fsGroup: undefined }) ?? '', /0600/);
    assert.match(unreadable({ name: 'p', persistentVolumeClaim: { claimName: 'x' } }, { uid: 1000, groups: [1000], fsGroup: undefined }) ?? '', /PVC without fsGroup/);
  });

  it('the readability check knows csi-driver volumes: fs-group must be a group of the pod', () => {
    const csi = (attributes: Record<string, string>) => ({ name: 'tls', csi: { driver: 'csi.cert-manager.io', readOnly: true, volumeAttributes: attributes } });
    const who = { uid: 1000, groups: [1000, 1000], fsGroup: 1000 };
    assert.equal(unreadable(csi({ 'csi.cert-manager.io/fs-group': '1000' }), who), null);
    assert.match(unreadable(csi({}), who) ?? '', /without fs-group/);
    assert.match(unreadable(csi({ 'csi.cert-manager.io/fs-group': '2000' }), who) ?? '', /fs-group 2000 is not a group of uid 1000/);
    assert.match(unreadable({ name: 'x', csi: { driver: 'secrets-store.csi.k8s.io' } }, who) ?? '', /not checked/);
  });

  it('the policy checks see a worker without fsGroup', () => {
    const worker = structuredClone(find(rendered.cpu, 'Deployment', 'advclip-worker'));
    delete worker.spec.template.spec.securityContext.fsGroup;
    const pod = worker.spec.template.spec;
    const who = identityOf(pod, pod.containers[0]);
    const tls = pod.volumes.find((v: any) => v.name === 'tls');
    assert.notEqual(unreadable(tls, who), null);
  });
});
