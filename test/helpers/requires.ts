/**
 * One rule for a test that needs something outside the repository (a
 * binary such as nats-server or promtool, the native addon, a package of
 * schema models): when it is missing, under CI=true the test run fails with
 * one line naming it (CI installs everything: .ci/run), and elsewhere the
 * test is skipped with one loud line on stderr. Nothing is skipped quietly.
 */
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

export const inCI = (): boolean => /^(1|true|yes)$/i.test(process.env.CI ?? '');

/** The error a missing dependency raises under CI=true. */
export class MissingDependency extends Error {
  constructor(readonly dependency: string, how: string) {
    super(`missing test dependency under CI=true: ${dependency} (${how})`);
    this.name = 'MissingDependency';
  }
}

/**
 * A dependency found missing (`why`): throws MissingDependency under CI=true, otherwise prints one
 * loud line and returns the reason, for node:test's `skip` option or a diagnostic.
 */
export function missing(dependency: string, why: string, how: string): string {
  if (inCI()) throw new MissingDependency(dependency, `${why}; ${how}`);
  const reason = `${dependency} missing: ${why}; ${how}`;
  process.stderr.write(`\n!!!!! SKIPPED (not under CI=true; there this fails): ${reason}\n`);
  return reason;
}

/** The `skip` option for a test needing `dependency`: false when `problem` is undefined (it is there). */
export function requires(dependency: string, problem: string | undefined, how: string): string | false {
  return problem === undefined ? false : missing(dependency, problem, how);
}

const SBIN = ['/usr/sbin', '/usr/local/sbin', '/sbin'];

/** Absolute path of an executable on PATH (or in an sbin directory), or undefined. */
export function executable(name: string): string | undefined {
  for (const dir of [...(process.env.PATH ?? '').split(delimiter).filter(Boolean), ...SBIN]) {
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      continue;
    }
  }
  return undefined;
}

/** The `skip` option for a test that runs the binary `name`. */
export function requiresBinary(name: string, how: string): string | false {
  return requires(name, executable(name) ? undefined : 'not on PATH', how);
}

export const NATS_SERVER = ['nats-server', 'apt-get install nats-server'] as const;
export const PROMETHEUS = ['prometheus', 'apt-get install prometheus'] as const;
export const PROMTOOL = ['promtool', "apt-get install prometheus (Debian's package ships promtool)"] as const;
export const DOCKER_COMPOSE = ['docker-compose', 'apt-get install docker-compose'] as const;
export const KUBECTL = ['kubectl', 'not in Debian: install it from https://dl.k8s.io (.ci/run does)'] as const;
