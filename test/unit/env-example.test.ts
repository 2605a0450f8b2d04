import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseEnv } from 'node:util';
import { loadConfig } from '../../src/infra/config.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The settings of .env.example with every commented `# NAME=value` line taken as set. */
function exampleSettings(): Record<string, string> {
  const text = readFileSync(join(ROOT, '.env.example'), 'utf8');
  const lines = text
    .split('\n')
    .map((line) => /^# ([A-Z][A-Z0-9_]*=.*)$/.exec(line)?.[1])
    .filter((line): line is string => line !== undefined);
  return parseEnv(lines.join('\n')) as Record<string, string>;
}

/** The variables the config schema reads, from its source (the schema's keys). */
function schemaVariables(): string[] {
  const source = readFileSync(join(ROOT, 'src', 'infra', 'config.ts'), 'utf8');
  return [...source.matchAll(/^ {4}([A-Z][A-Z0-9_]*):/gm)].map((m) => m[1] as string);
}

describe('.env.example', () => {
  it('when compared with the config schema, then it names every setting and no other', () => {
    expect(Object.keys(exampleSettings()).sort()).to.deep.equal(schemaVariables().sort());
  });

  it('when every line is uncommented, then the settings are the defaults', () => {
    expect(loadConfig(exampleSettings())).to.deep.equal(loadConfig({}));
  });
});
