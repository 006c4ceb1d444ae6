/**
 * What the Kubernetes tests share: the overlays rendered by `kubectl
 * kustomize`, schema validation (kubernetes-models for the core API, a shape
 * check of the fields we use for the Prometheus Operator's CRDs when its
 * models are not installed), and the CI rule: under CI=true a missing kubectl
 * fails the tests; elsewhere they are skipped with one loud line.
 */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { z } from 'zod';
import { onPath, repoRoot, run } from './tools.ts';

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: any; // shapes differ by kind; the schemas check them
  data?: Record<string, string>;
}

export const k8sRoot = join(repoRoot, 'deploy/k8s');
export const overlays = readdirSync(join(k8sRoot, 'overlays')).sort();

export function parseObjects(text: string, source: string): K8sObject[] {
  return parseAllDocuments(text).flatMap((doc) => {
    if (doc.errors.length > 0) throw new Error(`${source}: ${doc.errors[0].message}`);
    const o = doc.toJS() as K8sObject | null;
    return o ? [o] : [];
  });
}

/**
 * The skip option for tests that need kubectl: false when it is there or
 * under CI=true (the test then fails on the missing binary), else the reason,
 * printed once to stderr so a skip is never silent.
 */
export function kubectlSkip(): string | false {
  if (onPath('kubectl')) return false;
  if (process.env.CI === 'true') return false;
  const reason = 'kubectl not on PATH: the rendered Kubernetes overlays are NOT checked (install kubectl; CI=true makes this a failure)';
  process.stderr.write(`\n!!! SKIPPED: ${reason}\n\n`);
  return reason;
}

/** `kubectl kustomize` of an overlay by name, or of a directory by absolute path. */
export function render(overlay: string): K8sObject[] {
  assert.ok(onPath('kubectl'), 'kubectl is required to render the overlays (CI=true: a missing tool fails)');
  const r = run('kubectl', ['kustomize', overlay.startsWith('/') ? overlay : `deploy/k8s/overlays/${overlay}`]);
  assert.equal(r.status, 0, `kubectl kustomize ${overlay}: ${r.stderr}`);
  return parseObjects(r.stdout, `kubectl kustomize ${overlay}`);
}

/** The fields of the Prometheus Operator's CRDs these manifests use, checked when @kubernetes-models/prometheus-operator is absent. */
const labelMap = z.record(z.string(), z.string());
const metadata = z.object({ name: z.string().min(1), namespace: z.string().optional(), labels: labelMap.optional(), annotations: labelMap.optional() });
const duration = z.string().regex(/^(\d+(ms|s|m|h|d|w|y))+$/);
const issuerRef = z.strictObject({ name: z.string().min(1), kind: z.enum(['Issuer', 'ClusterIssuer']), group: z.literal('cert-manager.io').optional() });
const keyUsage = z.enum(['digital signature', 'key encipherment', 'server auth', 'client auth', 'cert sign', 'crl sign']);
/** cert-manager.io/v1: the fields of Issuer and Certificate these manifests use (cert-manager's models are not installed). */
const certManagerShapes: Record<string, z.ZodType> = {
  Issuer: z.object({ metadata, spec: z.union([z.strictObject({ selfSigned: z.strictObject({}) }), z.strictObject({ ca: z.strictObject({ secretName: z.string().min(1) }) })]) }),
  Certificate: z.object({
    metadata,
    spec: z.strictObject({
      secretName: z.string().min(1),
      issuerRef,
      isCA: z.boolean().optional(),
      commonName: z.string().min(1).optional(),
      dnsNames: z.array(z.string().min(1)).optional(),
      ipAddresses: z.array(z.string().min(1)).optional(),
      uris: z.array(z.string().min(1)).optional(),
      duration: duration.optional(),
      renewBefore: duration.optional(),
      usages: z.array(keyUsage).optional(),
      privateKey: z.strictObject({ algorithm: z.enum(['RSA', 'ECDSA', 'Ed25519']), size: z.number().int().optional(), rotationPolicy: z.enum(['Never', 'Always']).optional() }).optional(),
    }),
  }),
};
const crdShapes: Record<string, z.ZodType> = {
  ServiceMonitor: z.object({
    metadata,
    spec: z.strictObject({
      selector: z.object({
        matchLabels: labelMap.optional(),
        matchExpressions: z.array(z.strictObject({ key: z.string(), operator: z.enum(['In', 'NotIn', 'Exists', 'DoesNotExist']), values: z.array(z.string()).optional() })).optional(),
      }),
      namespaceSelector: z.object({}).loose().optional(),
      endpoints: z.array(z.strictObject({ port: z.string(), path: z.string().startsWith('/'), interval: duration.optional(), scheme: z.enum(['http', 'https']).optional() })).min(1),
    }),
  }),
  PodMonitor: z.object({ metadata, spec: z.object({ selector: z.object({}).loose(), podMetricsEndpoints: z.array(z.object({ port: z.string() }).loose()).min(1) }).loose() }),
  PrometheusRule: z.object({
    metadata,
    spec: z.strictObject({
      groups: z.array(
        z.strictObject({
          name: z.string().min(1),
          interval: duration.optional(),
          rules: z.array(
            z.union([
              z.strictObject({ alert: z.string().min(1), expr: z.string().min(1), for: duration.optional(), labels: labelMap.optional(), annotations: labelMap.optional() }),
              z.strictObject({ record: z.string().min(1), expr: z.string().min(1), labels: labelMap.optional() }),
            ]),
          ).min(1),
        }),
      ).min(1),
    }),
  }),
};

/** Validates against the schema of its kind; throws with the reason when it does not fit. */
export async function validate(o: K8sObject): Promise<void> {
  if (o.apiVersion === 'cert-manager.io/v1') {
    const shape = certManagerShapes[o.kind];
    assert.ok(shape, `no shape check for ${o.apiVersion} ${o.kind}`);
    const result = shape.safeParse(o);
    if (!result.success) throw new Error(z.prettifyError(result.error));
    return;
  }
  if (o.apiVersion === 'monitoring.coreos.com/v1') {
    const models = await import('@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1' as string).catch(() => null);
    if (models?.[o.kind]) {
      new models[o.kind](o).validate();
      return;
    }
    const shape = crdShapes[o.kind];
    assert.ok(shape, `no shape check for ${o.apiVersion} ${o.kind}`);
    const result = shape.safeParse(o);
    if (!result.success) throw new Error(z.prettifyError(result.error));
    return;
  }
  const models = (await import(`kubernetes-models/${o.apiVersion}`)) as Record<string, new (data: unknown) => { validate(): void }>;
  const Model = models[o.kind];
  assert.ok(Model, `${o.apiVersion} has no kind ${o.kind}`);
  new Model(o).validate();
}

export async function validateAll(objects: K8sObject[], where: string): Promise<void> {
  for (const o of objects) {
    try {
      await validate(o);
    } catch (err) {
      assert.fail(`${where}: ${o.kind} ${o.metadata?.name}: ${(err as Error).message}`);
    }
  }
}

export const find = (objects: K8sObject[], kind: string, name: string): K8sObject => {
  const o = objects.find((x) => x.kind === kind && x.metadata.name === name);
  assert.ok(o, `${kind} ${name}`);
  return o!;
};

/** Objects that run pods, with their pod spec. */
export const podOwners = (objects: K8sObject[]) =>
  objects.filter((o) => ['Deployment', 'StatefulSet', 'Job', 'DaemonSet'].includes(o.kind)).map((o) => ({ owner: o, template: o.spec.template }));
