/** `npm run db:migrate`: creates the database if needed and applies every migration. */
import { ConfigError, loadConfig } from '../src/infra/config.js';
import { migrateDatabase } from '../src/infra/db/migrate.js';
import { loadEnvFile } from '../src/infra/env-file.js';
import { StartupError, describeUrl } from '../src/infra/startup-error.js';

try {
  loadEnvFile();
  const config = loadConfig();
  await migrateDatabase(config.databaseUrl);
  console.log(`migrations applied to ${describeUrl(config.databaseUrl)}`);
} catch (err) {
  if (err instanceof ConfigError || err instanceof StartupError) {
    console.error(err.message);
    process.exit(1);
  }
  throw err;
}
