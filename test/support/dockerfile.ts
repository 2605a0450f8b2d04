import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** One instruction of a Dockerfile: `COPY --from=build /app/dist ./dist` → COPY, flags, args. */
export interface Instruction {
  readonly keyword: string;
  /** `--name=value` options before the arguments (`--from`, `--interval` …). */
  readonly flags: Readonly<Record<string, string>>;
  /** The rest, as written (continuations joined). */
  readonly rest: string;
  /** The arguments of the exec (JSON) form, or undefined when it is the shell form. */
  readonly exec?: readonly string[];
}

export interface Stage {
  readonly from: string;
  readonly name?: string;
  readonly instructions: readonly Instruction[];
}

/**
 * The stages of a Dockerfile, for tests of its structure: enough of the
 * format for this project's file (comments, `\` continuations, flags, the
 * JSON form), not a general parser.
 */
export function parseDockerfile(text: string): Stage[] {
  const logical: string[] = [];
  let current = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (current === '' && (line === '' || line.startsWith('#'))) continue;
    if (line.startsWith('#')) continue;
    if (line.endsWith('\\')) {
      current += `${line.slice(0, -1)} `;
      continue;
    }
    logical.push((current + line).trim());
    current = '';
  }
  const stages: { from: string; name?: string; instructions: Instruction[] }[] = [];
  for (const line of logical) {
    const instruction = parseInstruction(line);
    if (instruction.keyword === 'FROM') {
      const [image, as, name] = instruction.rest.split(/\s+/);
      stages.push({
        from: image ?? '',
        ...(as?.toUpperCase() === 'AS' && name ? { name } : {}),
        instructions: [],
      });
      continue;
    }
    const stage = stages.at(-1);
    if (!stage) throw new Error(`${instruction.keyword} before any FROM`);
    stage.instructions.push(instruction);
  }
  return stages;
}

function parseInstruction(line: string): Instruction {
  const keyword = (/^\S+/.exec(line)?.[0] ?? '').toUpperCase();
  let rest = line.slice(keyword.length).trim();
  const flags: Record<string, string> = {};
  for (;;) {
    const flag = /^--([a-z-]+)=(\S+)\s*/.exec(rest);
    if (!flag) break;
    flags[flag[1] as string] = flag[2] as string;
    rest = rest.slice(flag[0].length);
  }
  // HEALTHCHECK's own command follows CMD.
  const command = keyword === 'HEALTHCHECK' ? rest.replace(/^CMD\s+/, '') : rest;
  let exec: string[] | undefined;
  if (command.startsWith('[')) {
    const parsed: unknown = JSON.parse(command);
    if (Array.isArray(parsed) && parsed.every((a) => typeof a === 'string')) exec = parsed;
  }
  return { keyword, flags, rest, ...(exec ? { exec } : {}) };
}

export function readDockerfile(root: string): Stage[] {
  return parseDockerfile(readFileSync(join(root, 'Dockerfile'), 'utf8'));
}

/**
 * Whether .dockerignore lets a path into the build context. Its rules are
 * patterns, later ones winning, `!` re-including; this project's file is an
 * allow-list (`*`, then `!name` per top-level entry), which is all this reads.
 */
export function inBuildContext(rules: readonly string[], path: string): boolean {
  const top = path.replace(/^\.\//, '').split('/')[0] as string;
  let included = true;
  for (const rule of rules) {
    const negated = rule.startsWith('!');
    const pattern = (negated ? rule.slice(1) : rule).replace(/\/$/, '');
    if (pattern === '*' || pattern === top || pattern === path) included = negated;
  }
  return included;
}

export function readDockerignore(root: string): string[] {
  return readFileSync(join(root, '.dockerignore'), 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
}
