/**
 * `npm run token -- <userId> [--operator] [--ttl 1h]`: a bearer token signed with
 * JWT_SECRET (from the environment or .env), for trying the API locally.
 */
import { Command, InvalidArgumentError } from 'commander';
import { SignJWT } from 'jose';
import { USER_ID_PATTERN } from '../src/domain/issue-request.js';
import { ConfigError, loadConfig } from '../src/infra/config.js';
import { loadEnvFile } from '../src/infra/env-file.js';

const TTL = /^[1-9][0-9]{0,6}[smhd]$/;

const program = new Command('npm run token --')
  .description('Prints a bearer token for a user, signed with JWT_SECRET (HS256).')
  .argument('<userId>', 'the user (the token subject): 1-64 of A-Z a-z 0-9 _ . : -', (v) => {
    if (!USER_ID_PATTERN.test(v)) {
      throw new InvalidArgumentError('must be 1-64 characters from A-Z a-z 0-9 _ . : -');
    }
    return v;
  })
  .option('--operator', 'grant the operator role (JWT_OPERATOR_ROLE in JWT_ROLES_CLAIM)')
  .option(
    '--ttl <duration>',
    'how long the token is valid: 30s, 15m, 1h, 7d',
    (v) => {
      if (!TTL.test(v)) throw new InvalidArgumentError('must be a number and s, m, h or d: 1h');
      return v;
    },
    '1h',
  )
  .showHelpAfterError();

program.parse();
const [userId] = program.processedArgs as [string];
const { operator, ttl } = program.opts<{ operator?: boolean; ttl: string }>();

try {
  loadEnvFile();
  const config = loadConfig();
  const identity = config.identity;
  if (identity?.key.kind !== 'secret') {
    console.error(
      identity
        ? 'JWT_JWKS_URL is set: tokens come from the identity provider that publishes those keys, not from here'
        : 'JWT_SECRET is not set: set it (at least 32 bytes), in the environment or in .env, to the value the service uses',
    );
    process.exit(1);
  }
  let token = new SignJWT(operator ? { [identity.rolesClaim]: [identity.operatorRole] } : {})
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(userId)
    .setIssuedAt()
    .setExpirationTime(ttl);
  if (identity.issuer) token = token.setIssuer(identity.issuer);
  if (identity.audience) token = token.setAudience(identity.audience);
  console.log(await token.sign(new TextEncoder().encode(identity.key.secret)));
} catch (err) {
  if (err instanceof ConfigError) {
    console.error(err.message);
    process.exit(1);
  }
  throw err;
}
