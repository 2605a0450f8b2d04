import { existsSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Loads `.env` from the working directory when there is one, so that a
 * checkout runs with its settings in a file (see .env.example). A variable
 * already in the environment wins over the file, even when it is set empty
 * (which loadConfig then reads as unset). The file only fills process.env:
 * loadConfig still parses every setting. Returns the file's path when loaded.
 */
export function loadEnvFile(dir: string = process.cwd()): string | undefined {
  const path = join(dir, '.env');
  if (!existsSync(path)) return undefined;
  process.loadEnvFile(path);
  return path;
}
