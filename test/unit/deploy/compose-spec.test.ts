/**
 * docker-compose.yml against the Compose Specification's JSON schema, which
 * `docker compose` v2 validates every file with (compose-go). No v2 plugin
 * can be installed on our machines (Debian bookworm ships only docker-compose
 * 1.29, which reads the file with v1's own schema), so this is the v2 check
 * we can run. The schema is the copy in the npm package docker-compose, the
 * compose driver of testcontainers; ajv comes with kubernetes-models'
 * validators, which the Kubernetes tests use.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Ajv } from 'ajv';
import { parse } from 'yaml';
import { repoRoot } from './tools.ts';

const require = createRequire(import.meta.url);
const schemaPath = join(require.resolve('docker-compose/package.json'), '..', 'schema', 'compose-spec.json');
const schema = JSON.parse(readFileSync(schemaPath, 'utf8')) as Record<string, unknown>;
// its $schema (https://json-schema.org/draft-07/schema) is draft-07 under a URL ajv does not map; the meta-check is not ours to make
const validate = new Ajv({ allErrors: true, strict: false, validateSchema: false }).compile(schema);

const problems = (doc: unknown): string[] => (validate(doc) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message} ${JSON.stringify(e.params)}`));
const composeFile = () => parse(readFileSync(join(repoRoot, 'docker-compose.yml'), 'utf8'), { merge: true }) as { services: Record<string, Record<string, unknown>> };

describe('docker-compose.yml fits the Compose Specification (what docker compose v2 validates)', () => {
  it('docker-compose.yml is valid', () => {
    assert.deepEqual(problems(composeFile()), []);
  });

  it('the per-GPU override of deploy/docker/gpu-workers.mjs is valid', () => {
    const r = spawnSync(process.execPath, [join(repoRoot, 'deploy/docker/gpu-workers.mjs'), '2'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(problems(parse(r.stdout, { merge: true })), []);
  });

  it('a key the specification does not know is refused (the check is real)', () => {
    const doc = composeFile();
    const [name] = Object.keys(doc.services);
    doc.services[name] = { ...doc.services[name], restart_policy: 'on-failure' };
    assert.match(problems(doc).join('\n'), new RegExp(`/services/${name} must NOT have additional properties.*restart_policy`));
  });
});
