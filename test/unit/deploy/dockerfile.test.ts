/**
 * The images cannot be built here (no Docker engine), so their Dockerfiles
 * are read as specifications: multi-stage, non-root, health-checked on
 * /healthz, and every COPY source survives .dockerignore.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { repoRoot } from './tools.ts';

interface Instruction {
  readonly op: string;
  readonly args: string;
}

/** Instructions of a Dockerfile, continuation lines joined, comments dropped. */
function instructions(path: string): Instruction[] {
  return readFileSync(join(repoRoot, path), 'utf8')
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const [op, ...rest] = l.split(/\s+/);
      return { op: op.toUpperCase(), args: rest.join(' ') };
    });
}

/** The instructions of the last stage, the one that runs. */
const finalStage = (all: Instruction[]) => all.slice(all.map((i) => i.op).lastIndexOf('FROM'));

const ignored = readFileSync(join(repoRoot, '.dockerignore'), 'utf8')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l && !l.startsWith('#'));

for (const [variant, file] of [['cpu', 'deploy/docker/Dockerfile.cpu'], ['gpu', 'deploy/docker/Dockerfile.gpu']] as const) {
  describe(`${file}`, () => {
    const all = instructions(file);
    const last = finalStage(all);
    const args = (op: string, stage = last) => stage.filter((i) => i.op === op).map((i) => i.args);

    it('is multi-stage: dependencies installed in a build stage, copied into the runtime stage', () => {
      assert.ok(args('FROM', all).length >= 2);
      assert.ok(args('COPY').some((a) => /^--from=deps \/app\/node_modules /.test(a)));
      assert.ok(all.some((i) => i.op === 'RUN' && /npm ci --omit=dev/.test(i.args)));
    });

    it('runs as a non-root user, health-checked on /healthz, entry node bin/advclip.mjs', () => {
      const [user] = args('USER');
      assert.ok(user && !/^(root|0)(:|$)/.test(user), `USER ${user}`);
      const [health] = args('HEALTHCHECK');
      assert.match(health, /fetch\('http:\/\/127\.0\.0\.1:9464\/healthz'\)/);
      assert.deepEqual(JSON.parse(args('ENTRYPOINT')[0]), ['node', 'bin/advclip.mjs']);
      assert.match(args('EXPOSE').join(' '), /50051 9464/);
    });

    it('copies only sources that .dockerignore lets into the build context', () => {
      const sources = [...all, ...last]
        .filter((i) => i.op === 'COPY' && !i.args.startsWith('--from'))
        .flatMap((i) => i.args.split(/\s+/).slice(0, -1));
      assert.ok(sources.includes('package-lock.json') && sources.includes('services'));
      for (const src of sources) assert.ok(!ignored.includes(src), `${src} is in .dockerignore`);
    });

    if (variant === 'cpu') {
      it('builds on node:22-bookworm-slim (Node 22 LTS) with runtime packages only: no TensorFlow packages, no test driver, the addon built strictly', () => {
        assert.ok(args('FROM', all).every((a) => a.startsWith('node:22-bookworm-slim')));
        const deps = all.find((i) => i.op === 'RUN' && /npm ci --omit=dev/.test(i.args));
        assert.ok(deps, 'node_modules come from npm ci --omit=dev');
        for (const pkg of ["'optionalDependencies.@tensorflow/tfjs-node'", "'optionalDependencies.@tensorflow/tfjs-node-gpu'"]) {
          assert.ok(deps.args.includes(pkg), `${pkg} leaves the image's manifest`);
        }
        assert.match(deps.args, /npm prune --omit=dev/);
        const manifest = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8'));
        assert.ok(manifest.devDependencies.testcontainers && !manifest.dependencies.testcontainers, 'testcontainers drives the live tests only: a devDependency');
        assert.match(deps.args, /build-native\.mjs --strict/);
      });
    } else {
      it('builds on a CUDA runtime with Node 20 and tfjs-node-gpu, selecting the GPU backend', () => {
        assert.match(readFileSync(join(repoRoot, file), 'utf8'), /ARG CUDA_IMAGE=nvidia\/cuda:[\d.]+-cudnn\d-runtime-/);
        assert.deepEqual(args('FROM').map((a) => a.split(' ')[0]), ['${CUDA_IMAGE}']);
        assert.ok(args('COPY').includes('--from=node /usr/local/bin/node /usr/local/bin/node'));
        assert.ok(all.some((i) => i.op === 'RUN' && /npm rebuild .*@tensorflow\/tfjs-node-gpu/.test(i.args)));
        assert.match(args('ENV').join(' '), /ADVCLIP_BACKEND=tensorflow-gpu/);
      });
    }
  });
}

describe('.dockerignore', () => {
  it('keeps dependencies, history, results, secrets and keys out of the build context', () => {
    for (const entry of ['node_modules', '.git', 'results', 'checkpoints', '.env', 'deploy/certs', '**/*.key', '**/*.pem']) {
      assert.ok(ignored.includes(entry), entry);
    }
  });
});
