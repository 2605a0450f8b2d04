import { expect } from 'chai';
import { ADMIN_TOKEN, drainAll, startHarness, type Harness } from '../support/harness.js';
import { createCoupon, requestIssue } from '../support/http.js';
import { snapshot } from '../support/state.js';
import { JWT_SECRET, userToken } from '../support/tokens.js';

/*
 * Bad input must be answered with a clear 4xx application/problem+json carrying
 * a stable `code`, never with a 5xx, and must leave Redis and PostgreSQL exactly
 * as they were. Part 1 is a hand-written table, part 2 a seeded fuzz run.
 */

// ---------------------------------------------------------------------------
// Sending requests
// ---------------------------------------------------------------------------

interface Outgoing {
  readonly method: string;
  readonly path: string;
  readonly headers?: Readonly<Record<string, string>>;
  /** Sent byte for byte; a string is encoded as UTF-8. No content-type is added. */
  readonly body?: string | Uint8Array;
}

interface Answer {
  readonly status: number;
  readonly contentType: string;
  readonly headers: Headers;
  readonly text: string;
  readonly body: Record<string, unknown> | null;
}

async function send(baseUrl: string, req: Outgoing): Promise<Answer> {
  const body = typeof req.body === 'string' ? Buffer.from(req.body, 'utf8') : req.body;
  const res = await fetch(baseUrl + req.path, {
    method: req.method,
    headers: { ...req.headers },
    body,
  });
  const text = await res.text();
  let parsed: unknown = null;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON: left null, the assertions say so
  }
  return {
    status: res.status,
    contentType: res.headers.get('content-type') ?? '',
    headers: res.headers,
    text,
    body:
      typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>) : null,
  };
}

const JSON_TYPE = { 'content-type': 'application/json' } as const;
const ADMIN = { authorization: `Bearer ${ADMIN_TOKEN}` } as const;

/** Header changes; null removes a header. */
type HeaderPatch = Readonly<Record<string, string | null>>;

function mergeHeaders(...parts: HeaderPatch[]): Record<string, string> {
  const merged: Record<string, string | null> = Object.assign({}, ...parts);
  return Object.fromEntries(
    Object.entries(merged).filter((entry): entry is [string, string] => entry[1] !== null),
  );
}

const USER_ID_PATTERN = /^[A-Za-z0-9_.:-]{1,64}$/;
const COUPON_ID_PATTERN = /^[1-9][0-9]{0,14}$/;

// ---------------------------------------------------------------------------
// Part 1: the hand-written table
// ---------------------------------------------------------------------------

interface Case {
  /** Completes "when …". */
  readonly when: string;
  readonly method: string;
  /** May hold {coupon}, {issued}, {pending}, {issued~} and {pending~} (the id with another nonce). */
  readonly path: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string | Uint8Array;
  readonly status: number;
  readonly code: string;
  /** Fields the `errors` of a VALIDATION_FAILED answer must name. */
  readonly mentions?: readonly string[];
  /** Fields the `errors` must not name (they were fine). */
  readonly spares?: readonly string[];
}

type Expected = Pick<Case, 'status' | 'code' | 'mentions' | 'spares'>;

const VALIDATION = (...mentions: string[]): Expected => ({
  status: 400,
  code: 'VALIDATION_FAILED',
  mentions,
});
const INVALID_JSON: Expected = { status: 400, code: 'INVALID_JSON' };
const BAD_REQUEST: Expected = { status: 400, code: 'BAD_REQUEST' };
const UNAUTHORIZED: Expected = { status: 401, code: 'UNAUTHORIZED' };
const NOT_FOUND: Expected = { status: 404, code: 'NOT_FOUND' };
const COUPON_NOT_FOUND: Expected = { status: 404, code: 'COUPON_NOT_FOUND' };
const REQUEST_NOT_FOUND: Expected = { status: 404, code: 'REQUEST_NOT_FOUND' };
const METHOD_NOT_ALLOWED: Expected = { status: 405, code: 'METHOD_NOT_ALLOWED' };
const TOO_LARGE: Expected = { status: 413, code: 'PAYLOAD_TOO_LARGE' };
const UNSUPPORTED: Expected = { status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' };

const CREATE_PATH = '/coupons';
const ISSUE_PATH = '/coupons/{coupon}/issue-requests';
const VALID_COUPON = { name: 'Spring sale', totalQuantity: 100 };
const VALID_ISSUE = { userId: 'carol' };
const VALID_COUPON_TEXT = JSON.stringify(VALID_COUPON);
const VALID_ISSUE_TEXT = JSON.stringify(VALID_ISSUE);
const OVER_LIMIT = 17 * 1024;

/** A printable label for a value: non-ASCII escaped, cut to `max` characters. */
function show(value: unknown, max = 40): string {
  const text = JSON.stringify(value) ?? String(value);
  const escaped = text.replace(
    /[^\x20-\x7e]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
  return escaped.length > max ? `${escaped.slice(0, max - 3)}...(${text.length} chars)` : escaped;
}

const nested = (depth: number) => '['.repeat(depth) + ']'.repeat(depth);
const nestedObject = (depth: number) => '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);
const utf8Bytes = (...parts: (string | number[])[]) =>
  Buffer.concat(
    parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'utf8') : Buffer.from(p))),
  );

function createCase(
  when: string,
  body: string | Uint8Array,
  expected: Expected,
  headers: HeaderPatch = {},
): Case {
  return {
    when: `POST /coupons ${when}`,
    method: 'POST',
    path: CREATE_PATH,
    headers: mergeHeaders(ADMIN, JSON_TYPE, headers),
    body,
    ...expected,
  };
}

function issueCase(
  when: string,
  body: string | Uint8Array | undefined,
  expected: Expected,
  headers: HeaderPatch = {},
): Case {
  return {
    when: `POST /coupons/:id/issue-requests ${when}`,
    method: 'POST',
    path: ISSUE_PATH,
    headers: mergeHeaders(JSON_TYPE, headers),
    ...(body === undefined ? {} : { body }),
    ...expected,
  };
}

const WRONG_TYPES: readonly unknown[] = [
  123,
  0,
  -1.5,
  true,
  false,
  null,
  [],
  ['x'],
  {},
  { value: 'x' },
];
const DATE_WRONG_TYPES: readonly unknown[] = [
  1893456000000,
  true,
  false,
  [],
  ['2030-01-01T00:00:00Z'],
  {},
];

const createCouponCases: Case[] = [
  // wrong types, every field
  ...WRONG_TYPES.map((v) =>
    createCase(
      `has name = ${show(v)}`,
      JSON.stringify({ ...VALID_COUPON, name: v }),
      VALIDATION('name'),
    ),
  ),
  ...[...WRONG_TYPES.filter((v) => typeof v !== 'number'), '100', '', '1e3'].map((v) =>
    createCase(
      `has totalQuantity = ${show(v)}`,
      JSON.stringify({ ...VALID_COUPON, totalQuantity: v }),
      VALIDATION('totalQuantity'),
    ),
  ),
  ...(['startsAt', 'endsAt'] as const).flatMap((field) =>
    DATE_WRONG_TYPES.map((v) =>
      createCase(
        `has ${field} = ${show(v)}`,
        JSON.stringify({ ...VALID_COUPON, [field]: v }),
        VALIDATION(field),
      ),
    ),
  ),
  // missing fields
  createCase('has an empty object', '{}', VALIDATION('name', 'totalQuantity')),
  createCase('has no name', JSON.stringify({ totalQuantity: 100 }), VALIDATION('name')),
  createCase(
    'has no totalQuantity',
    JSON.stringify({ name: 'Spring sale' }),
    VALIDATION('totalQuantity'),
  ),
  createCase(
    'has only the dates',
    JSON.stringify({ startsAt: '2990-01-01T00:00:00Z', endsAt: '2991-01-01T00:00:00Z' }),
    VALIDATION('name', 'totalQuantity'),
  ),
  // extra fields
  ...(
    [
      ['id', 7],
      ['issuedCount', 0],
      ['status', 'OPEN'],
      ['Name', 'Spring sale'],
      ['constructor', {}],
    ] as const
  ).map(([key, value]) =>
    createCase(
      `has an extra field ${key}`,
      JSON.stringify({ ...VALID_COUPON, [key]: value }),
      VALIDATION(key),
    ),
  ),
  createCase(
    'has an extra field __proto__',
    '{"name":"Spring sale","totalQuantity":100,"__proto__":{"isAdmin":true}}',
    VALIDATION('__proto__'),
  ),
  // names
  ...[
    '',
    '   ',
    '\t\n\r ',
    'x'.repeat(201),
    '\u0000',
    'Spring\u0000sale',
    '\ud800',
    'Spring \udc00sale',
    'Spring sale \ud83d',
  ].map((name) =>
    createCase(
      `has name = ${show(name)}`,
      JSON.stringify({ ...VALID_COUPON, name }),
      VALIDATION('name'),
    ),
  ),
  // odd but legal names: the answer blames the bad quantity only, and nothing is stored
  ...[
    '🎉 Spring sale 🎉',
    '\u200fמבצע אביב\u200f',
    '\u200b',
    '\u202eelas gnirpS',
    '👩‍👩‍👧'.repeat(25),
  ].map((name) =>
    createCase(
      `has name = ${show(name)} and totalQuantity 0`,
      JSON.stringify({ name, totalQuantity: 0 }),
      {
        ...VALIDATION('totalQuantity'),
        spares: ['name'],
      },
    ),
  ),
  // quantities
  ...[0, -1, -100, 0.5, 1.5, 99.99, 10_000_001, 2 ** 31, 2 ** 53 + 2, Number.MAX_VALUE, 1e-7].map(
    (q) =>
      createCase(
        `has totalQuantity = ${q}`,
        JSON.stringify({ ...VALID_COUPON, totalQuantity: q }),
        VALIDATION('totalQuantity'),
      ),
  ),
  ...['-0', '1e400', '-1e400', '1e7000'].map((q) =>
    createCase(
      `has totalQuantity = ${q} (raw)`,
      `{"name":"Spring sale","totalQuantity":${q}}`,
      VALIDATION('totalQuantity'),
    ),
  ),
  // dates
  ...(['startsAt', 'endsAt'] as const).flatMap((field) =>
    [
      '',
      'tomorrow',
      '2999-13-01T00:00:00Z',
      '2999-02-30T00:00:00Z',
      '2999-01-01T25:00:00Z',
      '2999-01-01',
      '2999-01-01T00:00:00',
      '2999-01-01 00:00:00Z',
      '2999-01-01T00:00:00+25:00',
      '2999-01-01T00:00:00+0900',
      '01/02/2999',
      'Tue, 01 Jan 2999 00:00:00 GMT',
      '+012999-01-01T00:00:00Z',
      '2999-01-01T00:00:00Z\u0000',
      '0000-01-01T00:00:00Z',
      '0001-01-01T00:00:00Z',
      '0049-06-01T00:00:00Z',
      '9999-12-31T23:59:59-14:00',
    ].map((v) =>
      createCase(
        `has ${field} = ${show(v)}`,
        JSON.stringify({ ...VALID_COUPON, [field]: v }),
        VALIDATION(field),
      ),
    ),
  ),
  createCase(
    'has startsAt before 1970',
    JSON.stringify({ ...VALID_COUPON, startsAt: '1969-12-31T23:59:59Z' }),
    VALIDATION('startsAt'),
  ),
  createCase(
    'has endsAt before startsAt',
    JSON.stringify({
      ...VALID_COUPON,
      startsAt: '2999-02-01T00:00:00Z',
      endsAt: '2999-01-01T00:00:00Z',
    }),
    VALIDATION('endsAt'),
  ),
  createCase(
    'has endsAt equal to startsAt',
    JSON.stringify({
      ...VALID_COUPON,
      startsAt: '2999-01-01T00:00:00Z',
      endsAt: '2999-01-01T00:00:00Z',
    }),
    VALIDATION('endsAt'),
  ),
  createCase(
    'has endsAt equal to startsAt written with another offset',
    JSON.stringify({
      ...VALID_COUPON,
      startsAt: '2999-01-01T09:00:00+09:00',
      endsAt: '2999-01-01T00:00:00Z',
    }),
    VALIDATION('endsAt'),
  ),
  ...[
    '1970-01-01T00:00:00Z',
    '2000-01-01T00:00:00Z',
    new Date(Date.now() - 60_000).toISOString(),
  ].map((endsAt) =>
    createCase(
      `has endsAt in the past (${endsAt})`,
      JSON.stringify({ ...VALID_COUPON, endsAt }),
      VALIDATION('endsAt'),
    ),
  ),
  // bodies that are not a JSON object
  createCase('has an empty body', '', VALIDATION('name', 'totalQuantity')),
  {
    when: 'POST /coupons has no body at all',
    method: 'POST',
    path: CREATE_PATH,
    headers: { ...ADMIN, ...JSON_TYPE },
    ...VALIDATION('name', 'totalQuantity'),
  },
  createCase('has the body null', 'null', INVALID_JSON),
  createCase('has the body true', 'true', INVALID_JSON),
  createCase('has the body 42', '42', INVALID_JSON),
  createCase('has a JSON string as the body', '"Spring sale"', INVALID_JSON),
  createCase('has an empty array as the body', '[]', VALIDATION()),
  createCase('has the valid object wrapped in an array', `[${VALID_COUPON_TEXT}]`, VALIDATION()),
  createCase(
    'has form-encoded text declared as JSON',
    'name=Spring+sale&totalQuantity=100',
    INVALID_JSON,
  ),
  createCase('has XML declared as JSON', '<coupon name="Spring sale"/>', INVALID_JSON),
  createCase('has truncated JSON', VALID_COUPON_TEXT.slice(0, -1), INVALID_JSON),
  createCase('has JSON cut inside a key', '{"name":"Spring sale","totalQ', INVALID_JSON),
  createCase('has a lone {', '{', INVALID_JSON),
  createCase('has trailing garbage', `${VALID_COUPON_TEXT}x`, INVALID_JSON),
  createCase('has a second closing brace', `${VALID_COUPON_TEXT}}`, INVALID_JSON),
  createCase('has two JSON documents', VALID_COUPON_TEXT + VALID_COUPON_TEXT, INVALID_JSON),
  createCase('has a trailing NUL', `${VALID_COUPON_TEXT}\u0000`, INVALID_JSON),
  createCase('has single-quoted JSON', "{'name':'Spring sale','totalQuantity':100}", INVALID_JSON),
  createCase('has a trailing comma', '{"name":"Spring sale","totalQuantity":100,}', INVALID_JSON),
  createCase('has a comment', '{"name":"Spring sale",/* c */"totalQuantity":100}', INVALID_JSON),
  createCase('has unquoted keys', '{name:"Spring sale",totalQuantity:100}', INVALID_JSON),
  createCase('has NaN', '{"name":"Spring sale","totalQuantity":NaN}', INVALID_JSON),
  createCase(
    'has a BOM before an object with a wrong type (the BOM is tolerated, the content is not)',
    '\ufeff{"name":"Spring sale","totalQuantity":"100"}',
    VALIDATION('totalQuantity'),
  ),
  createCase('has a BOM before garbage', '\ufeffgarbage', INVALID_JSON),
  createCase('has two BOMs', `\ufeff\ufeff${VALID_COUPON_TEXT}`, INVALID_JSON),
  createCase(
    'has a BOM inside the object',
    '{"name":"Spring sale",\ufeff"totalQuantity":100}',
    INVALID_JSON,
  ),
  createCase(
    'has bytes that are not UTF-8 in the name',
    utf8Bytes('{"name":"Caf', [0xe9], '","totalQuantity":100}'),
    INVALID_JSON,
  ),
  createCase(
    'has an encoded lone surrogate (CESU) in the name',
    utf8Bytes('{"name":"a', [0xed, 0xa0, 0x80], '","totalQuantity":100}'),
    INVALID_JSON,
  ),
  createCase(
    'has a huge name (body over 16kb)',
    JSON.stringify({ ...VALID_COUPON, name: 'x'.repeat(OVER_LIMIT) }),
    TOO_LARGE,
  ),
  createCase(
    'has a valid object padded past 16kb',
    VALID_COUPON_TEXT + ' '.repeat(OVER_LIMIT),
    TOO_LARGE,
  ),
  createCase(
    'has totalQuantity nested 4000 arrays deep (under 16kb)',
    `{"name":"Spring sale","totalQuantity":${nested(4000)}}`,
    VALIDATION('totalQuantity'),
  ),
  createCase('is 2000 objects deep (under 16kb)', nestedObject(2000), VALIDATION('name', 'a')),
  createCase('is 9000 arrays deep (over 16kb)', nested(9000), TOO_LARGE),
  createCase('is 4000 objects deep (over 16kb)', nestedObject(4000), TOO_LARGE),
];

/** Declared body types that are not JSON, each sent with a body that would otherwise be valid. */
function contentTypeCases(
  make: (when: string, body: string | Uint8Array, expected: Expected, headers: HeaderPatch) => Case,
  valid: string,
  form: string,
): Case[] {
  const boundary = 'xYzBoUnDaRy';
  const multipart = `--${boundary}\r\nContent-Disposition: form-data; name="json"\r\n\r\n${valid}\r\n--${boundary}--\r\n`;
  const cases: [string, string | Uint8Array, Expected, HeaderPatch][] = [
    ['without a content-type', valid, UNSUPPORTED, { 'content-type': null }],
    ['with an empty content-type', valid, UNSUPPORTED, { 'content-type': '' }],
    ['as text/plain', valid, UNSUPPORTED, { 'content-type': 'text/plain' }],
    [
      'as text/plain; charset=utf-8',
      valid,
      UNSUPPORTED,
      { 'content-type': 'text/plain; charset=utf-8' },
    ],
    [
      'as form-urlencoded',
      form,
      UNSUPPORTED,
      { 'content-type': 'application/x-www-form-urlencoded' },
    ],
    [
      'as multipart',
      multipart,
      UNSUPPORTED,
      { 'content-type': `multipart/form-data; boundary=${boundary}` },
    ],
    ['as application/xml', valid, UNSUPPORTED, { 'content-type': 'application/xml' }],
    ['as text/json', valid, UNSUPPORTED, { 'content-type': 'text/json' }],
    [
      'as application/vnd.api+json',
      valid,
      UNSUPPORTED,
      { 'content-type': 'application/vnd.api+json' },
    ],
    [
      'as application/octet-stream',
      valid,
      UNSUPPORTED,
      { 'content-type': 'application/octet-stream' },
    ],
    ['as */*', valid, UNSUPPORTED, { 'content-type': '*/*' }],
    [
      'as two types at once',
      valid,
      UNSUPPORTED,
      { 'content-type': 'application/json, text/plain' },
    ],
    [
      'as JSON in latin1',
      valid,
      UNSUPPORTED,
      { 'content-type': 'application/json; charset=iso-8859-1' },
    ],
    [
      'as JSON in an unknown charset',
      valid,
      UNSUPPORTED,
      { 'content-type': 'application/json; charset=utf-99' },
    ],
    [
      'as JSON in utf-16le (bytes are ASCII)',
      valid,
      INVALID_JSON,
      { 'content-type': 'application/json; charset=utf-16le' },
    ],
    ['with content-encoding compress', valid, UNSUPPORTED, { 'content-encoding': 'compress' }],
    [
      'with content-encoding gzip over plain bytes',
      valid,
      BAD_REQUEST,
      { 'content-encoding': 'gzip' },
    ],
    ['with content-encoding br over plain bytes', valid, BAD_REQUEST, { 'content-encoding': 'br' }],
  ];
  return cases.map(([when, body, expected, headers]) =>
    make(`sent ${when}`, body, expected, headers),
  );
}

const T = ADMIN_TOKEN;
/** Every wrong way to present the operator token the table tries, on every operator route. */
const AUTH_VARIANTS: readonly (readonly [string, string | undefined])[] = [
  ['no authorization header', undefined],
  ['an empty authorization header', ''],
  ['"Bearer" and no token', 'Bearer'],
  ['"Bearer " and no token', 'Bearer '],
  ['Basic credentials', `Basic ${Buffer.from(`admin:${T}`).toString('base64')}`],
  ['the token under Basic', `Basic ${T}`],
  ['the token without a scheme', T],
  ['the token under another scheme', `Token ${T}`],
  ['a wrong token', 'Bearer not-the-admin-token'],
  ['the token with a suffix', `Bearer ${T}x`],
  ['the token missing its last character', `Bearer ${T.slice(0, -1)}`],
  ['the token in upper case', `Bearer ${T.toUpperCase()}`],
  ['the token twice', `Bearer ${T} ${T}`],
  ['the token in quotes', `Bearer "${T}"`],
  ['a 4000-character token', `Bearer ${'x'.repeat(4000)}`],
];
const authCases: Case[] = AUTH_VARIANTS.map(([when, authorization]) => ({
  when: `POST /coupons is sent with ${when}`,
  method: 'POST',
  path: CREATE_PATH,
  headers: { ...JSON_TYPE, ...(authorization === undefined ? {} : { authorization }) },
  body: VALID_COUPON_TEXT,
  ...UNAUTHORIZED,
}));

const authFirstCases: Case[] = (
  [
    ['with malformed JSON', '{', JSON_TYPE],
    ['as text/plain', VALID_COUPON_TEXT, { 'content-type': 'text/plain' }],
    ['with a body over 16kb', VALID_COUPON_TEXT + ' '.repeat(OVER_LIMIT), JSON_TYPE],
    ['with a wrong type', JSON.stringify({ name: 5 }), JSON_TYPE],
  ] as [string, string, Record<string, string>][]
).map(([when, body, headers]) => ({
  when: `POST /coupons is sent without a token and ${when}`,
  method: 'POST',
  path: CREATE_PATH,
  headers,
  body,
  ...UNAUTHORIZED,
}));

/** Ids that are not a positive integer of at most 15 digits, as they appear in the path. */
const MALFORMED_COUPON_IDS = [
  '0',
  '00',
  '-1',
  '01',
  '007',
  '1.5',
  '1.0',
  '1e3',
  '1E3',
  'abc',
  '1x',
  '0x1f',
  '%2B1',
  '%201',
  '1%20',
  '%20',
  '9999999999999999',
  '1'.repeat(16),
  '%00',
  '1%00',
  '%2F',
  '1%2F1',
  '1'.repeat(2000),
  'a'.repeat(2000),
  '%E2%80%8B1',
  '1%E2%80%8F',
  '%EF%BC%91',
  '%D9%A1',
  '%F0%9F%8E%89',
  '%EF%BF%BF',
  'null',
  'undefined',
  'NaN',
  'Infinity',
  '-Infinity',
  'true',
  '%7B%7D',
  '1%3B%20DROP%20TABLE%20coupons',
  '%27%20OR%20%271%27%3D%271',
  '1;x',
  '1,2',
  '1..2',
  '%0A1',
];
/** Percent-encodings that do not decode at all. */
const UNDECODABLE_SEGMENTS = ['%', '%zz', '%1', '%E0%A4%A', '%ED%A0%80', '%C0%AF', '%FF', '1%'];

const getCouponCases: Case[] = [
  ...MALFORMED_COUPON_IDS.map((id) => ({
    when: `GET /coupons/${show(id)}`,
    method: 'GET',
    path: `/coupons/${id}`,
    ...VALIDATION('couponId'),
  })),
  ...UNDECODABLE_SEGMENTS.map((id) => ({
    when: `GET /coupons/${id} (undecodable)`,
    method: 'GET',
    path: `/coupons/${id}`,
    ...BAD_REQUEST,
  })),
  ...['999999999999999', '100000'].map((id) => ({
    when: `GET /coupons/${id} (well-formed, unknown)`,
    method: 'GET',
    path: `/coupons/${id}`,
    ...COUPON_NOT_FOUND,
  })),
];

const issueCases: Case[] = [
  // bad coupon ids in the path, with a body that would otherwise be accepted
  ...MALFORMED_COUPON_IDS.map((id) => ({
    ...issueCase(`for coupon ${show(id)}`, VALID_ISSUE_TEXT, VALIDATION('couponId')),
    path: `/coupons/${id}/issue-requests`,
  })),
  ...UNDECODABLE_SEGMENTS.map((id) => ({
    ...issueCase(`for coupon ${id} (undecodable)`, VALID_ISSUE_TEXT, BAD_REQUEST),
    path: `/coupons/${id}/issue-requests`,
  })),
  {
    ...issueCase('for an unknown well-formed coupon', VALID_ISSUE_TEXT, COUPON_NOT_FOUND),
    path: '/coupons/999999999999999/issue-requests',
  },
  // wrong types
  ...[...WRONG_TYPES, ['carol'], { id: 'carol' }].map((v) =>
    issueCase(`has userId = ${show(v)}`, JSON.stringify({ userId: v }), VALIDATION('userId')),
  ),
  ...['1e400', '-0', '007'].map((v) =>
    issueCase(
      `has userId = ${v} (raw)`,
      `{"userId":${v}}`,
      v === '007' ? INVALID_JSON : VALIDATION('userId'),
    ),
  ),
  // missing and extra fields
  issueCase('has an empty object', '{}', VALIDATION('userId')),
  ...['user_id', 'userID', 'UserId', 'user'].map((key) =>
    issueCase(
      `has ${key} instead of userId`,
      JSON.stringify({ [key]: 'carol' }),
      VALIDATION('userId', key),
    ),
  ),
  ...(
    [
      ['couponId', 1],
      ['userid', 'carol'],
      ['status', 'ISSUED'],
      ['requestId', '1-1-AAAAAAAAAA'],
    ] as const
  ).map(([key, value]) =>
    issueCase(
      `has an extra field ${key}`,
      JSON.stringify({ ...VALID_ISSUE, [key]: value }),
      VALIDATION(key),
    ),
  ),
  issueCase(
    'has an extra field __proto__',
    '{"userId":"carol","__proto__":{"admin":true}}',
    VALIDATION('__proto__'),
  ),
  issueCase(
    'has userId only under __proto__',
    '{"__proto__":{"userId":"carol"}}',
    VALIDATION('userId'),
  ),
  // user ids outside 1-64 of [A-Za-z0-9_.:-], odd unicode included
  ...[
    '',
    ' ',
    'x'.repeat(65),
    'x'.repeat(1000),
    ' carol',
    'carol ',
    'car ol',
    'carol\n',
    'carol\t',
    'carol\u0000',
    '\u0000',
    'car🎉ol',
    '🎉',
    '👩‍👩‍👧',
    '\u200bcarol',
    'carol\u200b',
    'carol\u200f',
    '\u200e',
    '\u202ecarol',
    '\ufeffcarol',
    'carol\u00a0',
    '\ud800',
    'carol\udc00',
    '\ud83d',
    'ｃａｒｏｌ',
    'élise',
    'caro\u0301l',
    'ϲarol',
    'carol|x',
    'carol/x',
    'carol"',
    "carol'",
    'carol\\',
    'carol@example.com',
    'carol#1',
    'car,ol',
    '%41',
  ].map((userId) =>
    issueCase(`has userId = ${show(userId)}`, JSON.stringify({ userId }), VALIDATION('userId')),
  ),
  // bodies that are not a JSON object
  issueCase('has an empty body', '', VALIDATION('userId')),
  issueCase('has no body at all', undefined, VALIDATION('userId')),
  issueCase('has the body null', 'null', INVALID_JSON),
  issueCase('has a JSON string as the body', '"carol"', INVALID_JSON),
  issueCase('has a bare word as the body', 'carol', INVALID_JSON),
  issueCase('has an empty array as the body', '[]', VALIDATION()),
  issueCase('has the valid object wrapped in an array', `[${VALID_ISSUE_TEXT}]`, VALIDATION()),
  issueCase('has truncated JSON', VALID_ISSUE_TEXT.slice(0, -1), INVALID_JSON),
  issueCase('has JSON cut inside a string', '{"userId":"car', INVALID_JSON),
  issueCase('has trailing garbage', `${VALID_ISSUE_TEXT} garbage`, INVALID_JSON),
  issueCase('has two JSON documents', VALID_ISSUE_TEXT + VALID_ISSUE_TEXT, INVALID_JSON),
  issueCase('has single-quoted JSON', "{'userId':'carol'}", INVALID_JSON),
  issueCase('has unquoted keys', '{userId:"carol"}', INVALID_JSON),
  issueCase('has a trailing comma', '{"userId":"carol",}', INVALID_JSON),
  issueCase('has a BOM before a wrong type', '\ufeff{"userId":5}', VALIDATION('userId')),
  issueCase('has a BOM before a bare word', '\ufeffcarol', INVALID_JSON),
  issueCase('has two BOMs', `\ufeff\ufeff${VALID_ISSUE_TEXT}`, INVALID_JSON),
  issueCase(
    'has bytes that are not UTF-8 in userId',
    utf8Bytes('{"userId":"car', [0xff], 'ol"}'),
    INVALID_JSON,
  ),
  issueCase(
    'has the body in UTF-16LE without saying so',
    Buffer.from(VALID_ISSUE_TEXT, 'utf16le'),
    INVALID_JSON,
  ),
  issueCase(
    'has a huge userId (body over 16kb)',
    JSON.stringify({ userId: 'x'.repeat(OVER_LIMIT) }),
    TOO_LARGE,
  ),
  issueCase(
    'has a valid object padded past 16kb',
    VALID_ISSUE_TEXT + '\n'.repeat(OVER_LIMIT),
    TOO_LARGE,
  ),
  issueCase(
    'has userId nested 7000 arrays deep (under 16kb)',
    `{"userId":${nested(7000)}}`,
    VALIDATION('userId'),
  ),
  issueCase(
    'has an extra field 2000 objects deep (under 16kb)',
    `{"userId":"carol","a":${nestedObject(2000)}}`,
    VALIDATION('a'),
  ),
  issueCase('is 10000 arrays deep (over 16kb)', nested(10_000), TOO_LARGE),
  issueCase('is 4000 objects deep (over 16kb)', nestedObject(4000), TOO_LARGE),
  // the one business refusal that involves no new state
  issueCase(
    'asks again for a user who was already issued the coupon',
    JSON.stringify({ userId: 'alice' }),
    { status: 409, code: 'ALREADY_ISSUED' },
  ),
];

const getRequestCases: Case[] = [
  ...[
    'abc',
    '1',
    '{coupon}',
    '{coupon}-1',
    '{coupon}-1-',
    '-1-AAAAAAAAAA',
    '0-1-AAAAAAAAAA',
    '01-1-AAAAAAAAAA',
    '9999999999999999-1-AAAAAAAAAA',
    '{coupon}-0-AAAAAAAAAA',
    '{coupon}-01-AAAAAAAAAA',
    '{coupon}-A-AAAAAAAAAA',
    '{coupon}-1234567890abc-AAAAAAAAAA',
    '{coupon}-1-AAAAAAAAA',
    '{coupon}-1-AAAAAAAAAAA',
    '{coupon}-1-AAAAAAAAA_',
    '{coupon}-1-AAAAAAAAA-',
    '{coupon}-1-AAAAAAAAA%00',
    '{coupon}-1-AAAAAAAAA%C3%84',
    '{coupon}-1-AAAAAAAAAA-1',
    '{coupon}_1_AAAAAAAAAA',
    '{coupon}.0-1-AAAAAAAAAA',
    '%20{issued}',
    '{issued}%20',
    '{issued}%0A',
    '{issued}x',
    'x{issued}',
    '{pending}%00',
    'x'.repeat(2000),
    '%F0%9F%8E%89',
    '%E2%80%8B',
    'null',
  ].map((id) => ({
    when: `GET /issue-requests/${show(id)}`,
    method: 'GET',
    path: `/issue-requests/${id}`,
    ...VALIDATION('requestId'),
  })),
  ...UNDECODABLE_SEGMENTS.map((id) => ({
    when: `GET /issue-requests/${id} (undecodable)`,
    method: 'GET',
    path: `/issue-requests/${id}`,
    ...BAD_REQUEST,
  })),
  ...[
    ['an unknown arrival', '{coupon}-1-AAAAAAAAAA'],
    ['an unknown coupon', '999999999999999-zzzzzzzzzzzz-AAAAAAAAAA'],
    ['a decided request with another nonce', '{issued~}'],
    ['a pending request with another nonce', '{pending~}'],
  ].map(([what, id]) => ({
    when: `GET /issue-requests/:id names ${what}`,
    method: 'GET',
    path: `/issue-requests/${id}`,
    ...REQUEST_NOT_FOUND,
  })),
];

const methodCases: Case[] = [
  ...['PUT', 'DELETE', 'PATCH'].map((method) => ['/coupons', method] as const),
  ...['POST', 'PUT', 'DELETE'].map((method) => ['/coupons/{coupon}', method] as const),
  ...['open', 'pause', 'resume'].flatMap((action) =>
    ['GET', 'PUT', 'DELETE', 'PATCH'].map(
      (method) => [`/coupons/{coupon}/${action}`, method] as const,
    ),
  ),
  ...['POST', 'PUT', 'DELETE', 'PATCH'].map(
    (method) => ['/coupons/{coupon}/stats', method] as const,
  ),
  ...['GET', 'PUT', 'DELETE', 'PATCH'].map((method) => [ISSUE_PATH, method] as const),
  ...['POST', 'PUT', 'DELETE', 'PATCH'].map(
    (method) => ['/issue-requests/{issued}', method] as const,
  ),
  ...['POST', 'PUT', 'DELETE', 'PATCH'].map((method) => ['/health', method] as const),
  ...['GET', 'PUT', 'DELETE', 'PATCH'].map(
    (method) => ['/coupons/{coupon}/close', method] as const,
  ),
  ...['GET', 'PUT', 'DELETE', 'PATCH'].map((method) => ['/coupons/{coupon}/sync', method] as const),
  ...['POST', 'PUT', 'DELETE', 'PATCH'].map(
    (method) => ['/coupons/{coupon}/consistency', method] as const,
  ),
  ['/coupons/abc', 'DELETE'] as const,
  ['/coupons/abc/sync', 'GET'] as const,
  ['/coupons/999999999999999/sync', 'PUT'] as const,
  ['/coupons/abc/consistency', 'POST'] as const,
  ['/coupons/999999999999999/consistency', 'DELETE'] as const,
].map(([path, method]) => ({
  when: `${method} ${path} is sent (by an operator, with a valid body)`,
  method,
  path,
  headers: { ...ADMIN, ...JSON_TYPE },
  ...(method === 'GET'
    ? {}
    : { body: path.endsWith('issue-requests') ? VALID_ISSUE_TEXT : VALID_COUPON_TEXT }),
  ...METHOD_NOT_ALLOWED,
}));

const unknownRouteCases: Case[] = [
  ['GET', '/'],
  ['GET', '/coupon'],
  ['GET', '/coupons/{coupon}/issue-requests/1'],
  ['GET', '/coupons/{coupon}/x'],
  ['POST', '/coupons//issue-requests'],
  ['POST', '/coupons//sync'],
  ['GET', '/coupons//consistency'],
  ['POST', '/coupons/{coupon}/sync/x'],
  ['GET', '/coupons/{coupon}/consistency/x'],
  ['POST', '/coupons/{coupon}/close/sync'],
  ['POST', '/sync'],
  ['GET', '/issue-requests'],
  ['POST', '/issue-requests'],
  ['GET', '/issue-requests/{issued}/status'],
  ['GET', '/health/x'],
  ['POST', '/v1/coupons'],
  ['GET', '//coupons'],
  ['GET', '/admin'],
  ['GET', '/.env'],
  ['DELETE', '/nope'],
  ['PATCH', '/%F0%9F%8E%89'],
].map(([method, path]) => ({
  when: `${method} ${path} is sent`,
  method: method as string,
  path: path as string,
  headers: { ...ADMIN, ...JSON_TYPE },
  ...(method === 'GET' ? {} : { body: VALID_COUPON_TEXT }),
  ...NOT_FOUND,
}));

/**
 * POST /coupons/:couponId/close (operator) arrived after the contract above was
 * written; it takes no body. Only refusals are sent: a close that got through
 * would change the coupon.
 */
const closeCases: Case[] = [
  ...(
    [
      ['no authorization header', undefined],
      ['"Bearer" and no token', 'Bearer'],
      ['Basic credentials', `Basic ${Buffer.from(`admin:${T}`).toString('base64')}`],
      ['a wrong token', 'Bearer not-the-admin-token'],
    ] as [string, string | undefined][]
  ).map(([when, authorization]) => ({
    when: `POST /coupons/:id/close is sent with ${when}`,
    method: 'POST',
    path: '/coupons/{coupon}/close',
    headers: mergeHeaders({ authorization: authorization ?? null }),
    ...UNAUTHORIZED,
  })),
  {
    when: 'POST /coupons/:id/close is sent without a token for a malformed id',
    method: 'POST',
    path: '/coupons/abc/close',
    ...UNAUTHORIZED,
  },
  ...MALFORMED_COUPON_IDS.map((id) => ({
    when: `POST /coupons/${show(id)}/close`,
    method: 'POST',
    path: `/coupons/${id}/close`,
    headers: ADMIN,
    ...VALIDATION('couponId'),
  })),
  ...UNDECODABLE_SEGMENTS.map((id) => ({
    when: `POST /coupons/${id}/close (undecodable)`,
    method: 'POST',
    path: `/coupons/${id}/close`,
    headers: ADMIN,
    ...BAD_REQUEST,
  })),
  {
    when: 'POST /coupons/:id/close names an unknown well-formed coupon',
    method: 'POST',
    path: '/coupons/999999999999999/close',
    headers: ADMIN,
    ...COUPON_NOT_FOUND,
  },
];

/**
 * POST /coupons/:couponId/sync and GET /coupons/:couponId/consistency (operator)
 * came later still; neither reads a body. A sync that got through would rebuild
 * the coupon's Redis gate, so only refusals are sent to it. A consistency check
 * only reads, but is held to refusals like everything else here.
 */
function operatorRouteCases(
  method: 'POST' | 'GET',
  action: 'sync' | 'consistency' | 'open' | 'pause' | 'resume' | 'stats',
): Case[] {
  const label = `${method} /coupons/:id/${action}`;
  const at = (id: string) => `/coupons/${id}/${action}`;
  return [
    // every wrong way to present the token, against the real coupon
    ...AUTH_VARIANTS.map(([when, authorization]) => ({
      when: `${label} is sent with ${when}`,
      method,
      path: at('{coupon}'),
      headers: mergeHeaders({ authorization: authorization ?? null }),
      ...UNAUTHORIZED,
    })),
    // the token is checked before the id
    ...(
      [
        ['a malformed id', at('abc')],
        ['the id 0', at('0')],
        ['an unknown well-formed id', at('999999999999999')],
        ['the real coupon, with a trailing slash', `${at('{coupon}')}/`],
      ] as const
    ).map(([what, path]) => ({
      when: `${label} is sent without a token for ${what}`,
      method,
      path,
      ...UNAUTHORIZED,
    })),
    ...MALFORMED_COUPON_IDS.map((id) => ({
      when: `${method} ${at(show(id))}`,
      method,
      path: at(id),
      headers: ADMIN,
      ...VALIDATION('couponId'),
    })),
    ...UNDECODABLE_SEGMENTS.map((id) => ({
      when: `${method} ${at(id)} (undecodable)`,
      method,
      path: at(id),
      headers: ADMIN,
      ...BAD_REQUEST,
    })),
    ...['999999999999999', '100000'].map((id) => ({
      when: `${method} ${at(id)} (well-formed, unknown)`,
      method,
      path: at(id),
      headers: ADMIN,
      ...COUPON_NOT_FOUND,
    })),
  ];
}

/** A sync refused for its credentials is refused whatever body comes with it. */
const syncBodyCases: Case[] = [
  ...(
    [
      ['without a token', null],
      ['with a wrong token', 'Bearer not-the-admin-token'],
    ] as const
  ).flatMap(([who, authorization]) => [
    ...contentTypeCases(
      (when, body, _expected, headers) => ({
        when: `POST /coupons/:id/sync is sent ${who} and a body ${when}`,
        method: 'POST',
        path: '/coupons/{coupon}/sync',
        headers: mergeHeaders(JSON_TYPE, headers, { authorization }),
        body,
        ...UNAUTHORIZED,
      }),
      VALID_COUPON_TEXT,
      'name=Spring+sale&totalQuantity=100',
    ),
    ...(
      [
        ['malformed JSON', '{'],
        ['an empty JSON object', '{}'],
        ['a body over 16kb', VALID_COUPON_TEXT + ' '.repeat(OVER_LIMIT)],
        ['a body 9000 arrays deep', nested(9000)],
        ['bytes that are not UTF-8', utf8Bytes('{"name":"Caf', [0xe9], '"}')],
      ] as const
    ).map(([what, body]) => ({
      when: `POST /coupons/:id/sync is sent ${who} and ${what} as JSON`,
      method: 'POST',
      path: '/coupons/{coupon}/sync',
      headers: mergeHeaders(JSON_TYPE, { authorization }),
      body,
      ...UNAUTHORIZED,
    })),
  ]),
  // with the token, the id decides; the body is not read at all
  ...(
    [
      ['abc', 'text/plain', 'carol', VALIDATION('couponId')],
      ['0', 'application/json', '{', VALIDATION('couponId')],
      ['%zz', 'application/xml', '<sync/>', BAD_REQUEST],
      ['999999999999999', 'application/json', VALID_COUPON_TEXT, COUPON_NOT_FOUND],
      ['999999999999999', 'text/plain', 'x'.repeat(OVER_LIMIT), COUPON_NOT_FOUND],
    ] as const
  ).map(([id, type, body, expected]) => ({
    when: `POST /coupons/${id}/sync is sent by an operator with a ${type} body of ${body.length} characters`,
    method: 'POST',
    path: `/coupons/${id}/sync`,
    headers: { ...ADMIN, 'content-type': type },
    body,
    ...expected,
  })),
];

/** Paths one step away from the new routes. */
const operatorNearMissCases: Case[] = [
  {
    when: 'POST /coupons/sync is sent by an operator (no id: a POST to a coupon)',
    method: 'POST',
    path: '/coupons/sync',
    headers: ADMIN,
    ...METHOD_NOT_ALLOWED,
  },
  {
    when: 'GET /coupons/consistency is sent by an operator (no id: "consistency" read as the id)',
    method: 'GET',
    path: '/coupons/consistency',
    headers: ADMIN,
    ...VALIDATION('couponId'),
  },
];

/**
 * PATCH /coupons/:couponId (operator) edits a coupon: only refusals are sent,
 * against the real coupon (one issued, one waiting), so each must change nothing.
 */
const PATCH_PATH = '/coupons/{coupon}';
const VALID_PATCH_TEXT = JSON.stringify({ name: 'Renamed' });
const patchCase = (
  when: string,
  body: string | Uint8Array,
  expected: Expected,
  headers: HeaderPatch = {},
  path = PATCH_PATH,
): Case => ({
  when: `PATCH /coupons/:id is sent ${when}`,
  method: 'PATCH',
  path,
  headers: mergeHeaders(ADMIN, JSON_TYPE, headers),
  body,
  ...expected,
});
const inHours = (hours: number) => new Date(Date.now() + hours * 3_600_000).toISOString();
const patchCases: Case[] = [
  ...AUTH_VARIANTS.map(([when, authorization]) =>
    patchCase(`with ${when}`, VALID_PATCH_TEXT, UNAUTHORIZED, {
      authorization: authorization ?? null,
    }),
  ),
  patchCase('without a token and malformed JSON', '{', UNAUTHORIZED, { authorization: null }),
  ...(
    [
      ['an empty object', {}, []],
      ['an unknown field', { name: 'x', color: 'red' }, []],
      ['id as a field', { id: 5 }, []],
      ['issuedCount as a field', { issuedCount: 0 }, []],
      ['an empty name', { name: '' }, ['name']],
      ['a blank name', { name: '   ' }, ['name']],
      ['a 201-character name', { name: 'x'.repeat(201) }, ['name']],
      ['a name with NUL', { name: 'a\u0000b' }, ['name']],
      ['a numeric name', { name: 5 }, ['name']],
      ['a null name', { name: null }, ['name']],
      ['totalQuantity 0', { totalQuantity: 0 }, ['totalQuantity']],
      ['totalQuantity -1', { totalQuantity: -1 }, ['totalQuantity']],
      ['totalQuantity 1.5', { totalQuantity: 1.5 }, ['totalQuantity']],
      ['totalQuantity as a string', { totalQuantity: '20' }, ['totalQuantity']],
      ['totalQuantity null', { totalQuantity: null }, ['totalQuantity']],
      ['totalQuantity over the maximum', { totalQuantity: 10_000_001 }, ['totalQuantity']],
      ['startsAt without a time zone', { startsAt: '2030-01-01T00:00:00' }, ['startsAt']],
      ['startsAt as a date only', { startsAt: '2030-01-01' }, ['startsAt']],
      ['startsAt as a number', { startsAt: 1_900_000_000_000 }, ['startsAt']],
      ['startsAt in year 10000', { startsAt: '+010000-01-01T00:00:00Z' }, ['startsAt']],
      ['endsAt as garbage', { endsAt: 'tomorrow' }, ['endsAt']],
      ['endsAt before startsAt', { startsAt: inHours(2), endsAt: inHours(1) }, ['endsAt']],
      ['endsAt in the past', { endsAt: '2001-01-01T00:00:00Z' }, ['endsAt']],
      ['an array', [{ name: 'x' }], []],
    ] as [string, unknown, string[]][]
  ).map(([what, body, mentions]) =>
    patchCase(`by an operator with ${what}`, JSON.stringify(body), VALIDATION(...mentions)),
  ),
  patchCase('by an operator with malformed JSON', '{"name":', INVALID_JSON),
  // Only an object or an array is read as a JSON body.
  patchCase('by an operator with a JSON string', '"rename"', INVALID_JSON),
  patchCase('by an operator with JSON null', 'null', INVALID_JSON),
  patchCase(
    'by an operator with a body over 16kb',
    VALID_PATCH_TEXT + ' '.repeat(OVER_LIMIT),
    TOO_LARGE,
  ),
  ...contentTypeCases(
    (when, body, expected, headers) => patchCase(when, body, expected, headers),
    VALID_PATCH_TEXT,
    'name=Renamed',
  ),
  ...['abc', '0', '01', '1.5'].map((id) =>
    patchCase(
      `for the malformed id ${id}`,
      VALID_PATCH_TEXT,
      VALIDATION('couponId'),
      {},
      `/coupons/${id}`,
    ),
  ),
  patchCase(
    'for an unknown well-formed id',
    VALID_PATCH_TEXT,
    COUPON_NOT_FOUND,
    {},
    '/coupons/999999999999999',
  ),
];

/** GET /coupons (operator) reads only, but its query is held to refusals like everything else. */
const listCases: Case[] = [
  ...AUTH_VARIANTS.map(([when, authorization]) => ({
    when: `GET /coupons is sent with ${when}`,
    method: 'GET',
    path: '/coupons',
    headers: mergeHeaders({ authorization: authorization ?? null }),
    ...UNAUTHORIZED,
  })),
  {
    when: 'GET /coupons?limit=abc is sent without a token',
    method: 'GET',
    path: '/coupons?limit=abc',
    ...UNAUTHORIZED,
  },
  ...(
    [
      ['limit=0', ['limit']],
      ['limit=101', ['limit']],
      ['limit=-1', ['limit']],
      ['limit=1.5', ['limit']],
      ['limit=abc', ['limit']],
      ['limit=', ['limit']],
      ['limit=01', ['limit']],
      ['limit=1e2', ['limit']],
      ['limit=5&limit=6', ['limit']],
      ['status=open', ['status']],
      ['status=SOLD%20OUT', ['status']],
      ['status=', ['status']],
      ['status=OPEN&status=CLOSED', ['status']],
      ['after=', ['after']],
      ['after=not-a-cursor', ['after']],
      ['after=MA', ['after']],
      ['after=LTE', ['after']],
      ['after=%00', ['after']],
      ['page=2', []],
      ['offset=10', []],
    ] as [string, string[]][]
  ).map(([query, mentions]) => ({
    when: `GET /coupons?${query} is sent by an operator`,
    method: 'GET',
    path: `/coupons?${query}`,
    headers: ADMIN,
    ...VALIDATION(...mentions),
  })),
];

const TABLE: readonly (readonly [string, readonly Case[]])[] = [
  ['POST /coupons: body', createCouponCases],
  [
    'POST /coupons: content type',
    contentTypeCases(
      (when, body, expected, headers) => createCase(when, body, expected, headers),
      VALID_COUPON_TEXT,
      'name=Spring+sale&totalQuantity=100',
    ),
  ],
  ['POST /coupons: authorization', [...authCases, ...authFirstCases]],
  ['GET /coupons/:couponId', getCouponCases],
  ['POST /coupons/:couponId/issue-requests: path and body', issueCases],
  [
    'POST /coupons/:couponId/issue-requests: content type',
    contentTypeCases(
      (when, body, expected, headers) => issueCase(when, body, expected, headers),
      VALID_ISSUE_TEXT,
      'userId=carol',
    ),
  ],
  ['GET /issue-requests/:requestId', getRequestCases],
  ['POST /coupons/:couponId/close', closeCases],
  ['POST /coupons/:couponId/sync: path and authorization', operatorRouteCases('POST', 'sync')],
  ['POST /coupons/:couponId/sync: bodies', syncBodyCases],
  [
    'GET /coupons/:couponId/consistency: path and authorization',
    operatorRouteCases('GET', 'consistency'),
  ],
  ['GET /coupons', listCases],
  ['PATCH /coupons/:couponId', patchCases],
  ['POST /coupons/:couponId/open', operatorRouteCases('POST', 'open')],
  ['POST /coupons/:couponId/pause', operatorRouteCases('POST', 'pause')],
  ['POST /coupons/:couponId/resume', operatorRouteCases('POST', 'resume')],
  ['GET /coupons/:couponId/stats', operatorRouteCases('GET', 'stats')],
  ['near the operator routes', operatorNearMissCases],
  ['wrong methods on known paths', methodCases],
  ['unknown routes', unknownRouteCases],
];

// ---------------------------------------------------------------------------
// Shared assertions
// ---------------------------------------------------------------------------

/** The problem+json contract every refusal must honour. */
function expectProblem(
  answer: Answer,
  status: number,
  code: string,
  context: string,
): Record<string, unknown> {
  const where = `${context} → ${answer.status} ${answer.text.slice(0, 300)}`;
  expect(answer.status, where).to.equal(status);
  expect(answer.contentType, where).to.match(/^application\/problem\+json(;|$)/);
  const body = answer.body;
  expect(body, where).to.be.an('object');
  if (!body) throw new Error(where);
  expect(body.code, where).to.equal(code);
  expect(body.status, where).to.equal(status);
  expect(body.type, where).to.equal(`/problems/${code.toLowerCase().replaceAll('_', '-')}`);
  expect(body.title, where).to.be.a('string').and.not.equal('');
  expect(body.detail, where).to.be.a('string').and.not.equal('');
  expect(body.instance, where).to.be.a('string');
  // RFC 9110 §15.5.6: a 405 names the methods the path does support; anything else does not.
  if (status === 405) expect(answer.headers.get('allow'), where).to.match(/^[A-Z]+(, [A-Z]+)*$/);
  else expect(answer.headers.get('allow'), where).to.equal(null);
  return body;
}

function namedFields(body: Record<string, unknown>): string[] {
  const errors = body.errors as { path: string; message: string }[];
  return errors.flatMap((e) => {
    const last = e.path.split('.').pop() ?? '';
    const quoted = [...e.message.matchAll(/"([^"]*)"/g)].map((m) => m[1] as string);
    return [last, ...quoted];
  });
}

// ---------------------------------------------------------------------------
// Part 2: the fuzz run
// ---------------------------------------------------------------------------

const FUZZ_SEED = Number(process.env.BAD_INPUT_SEED ?? 0x5eed_c0de);
const FUZZ_COUNT = 4_000;
const FUZZ_CONCURRENCY = 50;

/** mulberry32: 32-bit state, good enough to spread fuzz cases, and reproducible. */
class Rng {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  }

  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<V>(items: readonly V[]): V {
    return items[Math.floor(this.next() * items.length)] as V;
  }
}

const ID_CHARS = 'ABCXYZabcxyz0123456789_.:-';
const PRINTABLE = Array.from({ length: 95 }, (_, i) => String.fromCharCode(32 + i)).join('');
const ODD_CHARS = [
  '\u0000',
  '\u0001',
  '\u001f',
  '\u007f',
  '\u0085',
  '\u00a0',
  '\u00ad',
  '\u200b',
  '\u200e',
  '\u200f',
  '\u202e',
  '\u2028',
  '\u2029',
  '\u2060',
  '\ufeff',
  '\ufffd',
  '\uffff',
  '\ud800',
  '\udbff',
  '\udc00',
  '\udfff',
  '🎉',
  '👩‍👩‍👧',
  'é',
  'e\u0301',
  'ｃ',
  '中',
  'ש',
  'ا',
  '١',
  '|',
  '"',
  '\\',
  '/',
  '%',
  '{',
  ' ',
  '\t',
  '\n',
];

function randomString(r: Rng): string {
  const length = r.chance(0.15) ? r.pick([0, 63, 64, 65, 66, 200, 201, 500]) : r.int(0, 24);
  let s = '';
  for (let i = 0; i < length; i += 1) {
    const roll = r.next();
    if (roll < 0.5) s += r.pick([...ID_CHARS]);
    else if (roll < 0.75) s += r.pick([...PRINTABLE]);
    else s += r.pick(ODD_CHARS);
  }
  return s;
}

const NUMBER_LITERALS = [
  '0',
  '-0',
  '1',
  '-1',
  '0.5',
  '1.5',
  '1.0',
  '1e3',
  '1E2',
  '0.1e1',
  '1e400',
  '-1e400',
  '1e-7',
  '10000000',
  '10000001',
  '2147483648',
  '9007199254740993',
  '100',
];
const KEYS = [
  'userId',
  'name',
  'totalQuantity',
  'startsAt',
  'endsAt',
  'id',
  '__proto__',
  'constructor',
  'user_id',
];
const DATE_STRINGS = [
  '2999-01-01T00:00:00Z',
  '2999-01-01T00:00:00+09:00',
  '2000-01-01T00:00:00Z',
  '0000-01-01T00:00:00Z',
  '0001-01-01T00:00:00Z',
  '9999-12-31T23:59:59-14:00',
  '2999-02-30T00:00:00Z',
  '2999-01-01',
  '2999-01-01T00:00:00',
  'tomorrow',
  '',
];

/** Random JSON text (not always valid JSON is the job of mutate()). */
function randomJson(r: Rng, depth: number): string {
  const roll = r.next();
  if (depth <= 0 || roll < 0.15) return r.pick(['null', 'true', 'false']);
  if (roll < 0.35) return r.pick(NUMBER_LITERALS);
  if (roll < 0.6) return JSON.stringify(r.chance(0.2) ? r.pick(DATE_STRINGS) : randomString(r));
  if (roll < 0.78) {
    const items = Array.from({ length: r.int(0, 4) }, () => randomJson(r, depth - 1));
    return `[${items.join(',')}]`;
  }
  const pairs = Array.from({ length: r.int(0, 5) }, () => {
    const key = r.chance(0.6) ? r.pick(KEYS) : randomString(r);
    return `${JSON.stringify(key)}:${randomJson(r, depth - 1)}`;
  });
  return `{${pairs.join(',')}}`;
}

/** Damages JSON text: truncation, stray characters, BOMs, trailing garbage, doubled text. */
function mutate(r: Rng, text: string): string {
  const at = r.int(0, text.length);
  switch (r.int(0, 7)) {
    case 0:
      return text.slice(0, at);
    case 1:
      return text.slice(0, at) + r.pick([...PRINTABLE, ...ODD_CHARS]) + text.slice(at);
    case 2:
      return text.slice(0, at) + text.slice(at + 1);
    case 3:
      return `\ufeff${text}`;
    case 4:
      return text + r.pick([' x', '}', ']', ',', '\u0000', 'null', text]);
    case 5:
      return text.replaceAll('"', "'");
    case 6:
      return r.pick(['', ' ', 'null', 'undefined', 'NaN', '{', '}', '[', '"', '\ufeff']);
    default:
      return text + ' '.repeat(r.int(1, 40));
  }
}

function randomBytes(r: Rng): Uint8Array {
  return Uint8Array.from({ length: r.int(0, 120) }, () => r.int(0, 255));
}

/** Replaces one value of an otherwise plausible body, drops a key or adds one. */
function corruptedObject(r: Rng, base: Record<string, string>): string {
  const entries = Object.entries(base);
  const edits = r.int(1, 3);
  for (let i = 0; i < edits; i += 1) {
    const roll = r.next();
    if (roll < 0.55 && entries.length > 0) {
      const index = r.int(0, entries.length - 1);
      const [key] = entries[index] as [string, string];
      entries[index] = [key, randomJson(r, 2)];
    } else if (roll < 0.75 && entries.length > 0) {
      entries.splice(r.int(0, entries.length - 1), 1);
    } else {
      entries.push([r.chance(0.5) ? r.pick(KEYS) : randomString(r), randomJson(r, 2)]);
    }
  }
  if (r.chance(0.3)) entries.sort(() => r.next() - 0.5);
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${v}`).join(',')}}`;
}

const JSON_CONTENT_TYPES = [
  'application/json',
  'application/json; charset=utf-8',
  'Application/JSON;charset=UTF-8',
];
const OTHER_CONTENT_TYPES = [
  '',
  'text/plain',
  'text/plain; charset=utf-8',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=xyz',
  'application/xml',
  'text/json',
  'application/vnd.api+json',
  'application/json-patch+json',
  'application/octet-stream',
  '*/*',
  'application/*',
  'application/json, text/plain',
  'application/json; charset=latin1',
  'application/json; charset=utf-99',
];
const CONTENT_ENCODINGS = ['gzip', 'deflate', 'br', 'compress', 'gzip, br', 'x-unknown'];

/** A body for a POST, and the headers that describe it. */
function randomPostBody(
  r: Rng,
  plausible: () => string,
): { body?: string | Uint8Array; headers: Record<string, string> } {
  const headers: Record<string, string> = {};
  const typeRoll = r.next();
  if (typeRoll < 0.75) headers['content-type'] = r.pick(JSON_CONTENT_TYPES);
  else if (typeRoll < 0.95) headers['content-type'] = r.pick(OTHER_CONTENT_TYPES);
  if (r.chance(0.04)) headers['content-encoding'] = r.pick(CONTENT_ENCODINGS);

  const roll = r.next();
  let body: string | Uint8Array | undefined;
  if (roll < 0.45) body = plausible();
  else if (roll < 0.65) body = randomJson(r, r.int(1, 5));
  else if (roll < 0.83) body = mutate(r, r.chance(0.5) ? plausible() : randomJson(r, 3));
  else if (roll < 0.88) body = randomBytes(r);
  else if (roll < 0.93) {
    const depth = r.chance(0.5) ? r.int(50, 7_000) : r.int(8_500, 12_000);
    body = r.chance(0.5) ? nested(depth) : `{"userId":${nested(depth)}}`;
  } else if (roll < 0.97) body = plausible() + ' '.repeat(r.int(16_400, 20_000));
  else body = undefined;
  return { ...(body === undefined ? {} : { body }), headers };
}

/** Could this body, however the server decodes it, form a valid request? Errs towards yes. */
function parsesTo(body: string | Uint8Array | undefined): unknown {
  if (body === undefined) return {};
  let text = typeof body === 'string' ? body : Buffer.from(body).toString('utf8');
  if (text.startsWith('\ufeff')) text = text.slice(1);
  if (text.trim() === '') return {};
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function mayBeValidIssueBody(body: string | Uint8Array | undefined): boolean {
  const value = parsesTo(body);
  if (!isPlainObject(value)) return false;
  const keys = Object.keys(value);
  return (
    keys.length === 1 && typeof value.userId === 'string' && USER_ID_PATTERN.test(value.userId)
  );
}

const STRICT_DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;
const EARLIEST_MS = Date.UTC(1970, 0, 1);
const LATEST_MS = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

/**
 * The contract's rules for a date: undefined means surely invalid, null means
 * "not set" (valid), a number is the instant, NaN means "valid, instant unknown".
 */
function contractDate(value: unknown): number | null | undefined {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'string') return undefined;
  const ms = Date.parse(value);
  if (Number.isNaN(ms)) return undefined;
  if (!STRICT_DATE_TIME.test(value)) return NaN; // odd but parseable: count it as valid
  if (!STRICT_DATE_TIME.test(new Date(ms).toISOString())) return NaN;
  return ms < EARLIEST_MS || ms > LATEST_MS ? undefined : ms;
}

/**
 * Could this body create a coupon under the contract? Follows the contract's
 * rules (not the service's code), and answers yes whenever it cannot tell.
 */
function mayBeValidCouponBody(body: string | Uint8Array | undefined): boolean {
  const value = parsesTo(body);
  if (!isPlainObject(value)) return false;
  const allowed = new Set(['name', 'totalQuantity', 'startsAt', 'endsAt']);
  if (!Object.keys(value).every((k) => allowed.has(k))) return false;
  const { name, totalQuantity: q } = value;
  if (typeof name !== 'string') return false;
  const trimmed = name.trim();
  if (trimmed.length < 1 || trimmed.length > 200) return false;
  if (trimmed.includes('\u0000') || /\p{Surrogate}/u.test(trimmed)) return false;
  if (typeof q !== 'number' || !Number.isInteger(q) || q < 1 || q > 10_000_000) return false;
  const startsAt = contractDate(value.startsAt);
  const endsAt = contractDate(value.endsAt);
  if (startsAt === undefined || endsAt === undefined) return false;
  if (startsAt !== null && endsAt !== null && endsAt <= startsAt) return false;
  // A minute of slack either way: an endsAt this close to now is left alone.
  if (endsAt !== null && endsAt < Date.now() - 60_000) return false;
  return true;
}

function decodesTo(segment: string): string | undefined {
  try {
    return decodeURIComponent(segment);
  } catch {
    return undefined;
  }
}

/** Could this path segment name a coupon that exists? Only small well-formed ids can. */
function mayNameExistingCoupon(segment: string): boolean {
  const decoded = decodesTo(segment);
  return decoded !== undefined && COUPON_ID_PATTERN.test(decoded) && Number(decoded) <= 1_000_000;
}

/** Is this path segment surely not a coupon id (undecodable, or decoding to anything else)? */
function isMalformedCouponSegment(segment: string): boolean {
  const decoded = decodesTo(segment);
  return decoded === undefined || !COUPON_ID_PATTERN.test(decoded);
}

/** encodeURIComponent, except that a lone surrogate becomes its (undecodable) CESU-8 bytes. */
function encodeSegment(s: string): string {
  const encoded = s.replace(/\p{Surrogate}|[^\p{Surrogate}]+/gu, (part) =>
    /\p{Surrogate}/u.test(part) ? '%ED%A0%80' : encodeURIComponent(part),
  );
  return encoded === '' ? 'x' : encoded;
}

const RAW_JUNK = [
  '%',
  '%zz',
  '%1',
  '%E0%A4%A',
  '%ED%A0%80',
  '%C0%AF',
  '%FF',
  '%00',
  '%2F',
  '%20',
  '%0A',
];
const NUMERIC_JUNK = [
  '0',
  '00',
  '-1',
  '01',
  '1.5',
  '1e3',
  '+1',
  '0x1f',
  'Infinity',
  'NaN',
  '١',
  '１',
];

function randomCouponSegment(r: Rng): string {
  const roll = r.next();
  if (roll < 0.3) return encodeSegment(randomString(r));
  if (roll < 0.5) {
    const base = r.pick(NUMERIC_JUNK);
    return encodeSegment(r.chance(0.5) ? base : `${base}${r.int(0, 9)}`);
  }
  if (roll < 0.65) {
    const digits =
      String(r.int(1, 9)) + Array.from({ length: r.int(0, 20) }, () => r.int(0, 9)).join('');
    return r.pick(RAW_JUNK) + digits + (r.chance(0.5) ? r.pick(RAW_JUNK) : '');
  }
  if (roll < 0.8)
    return String(r.int(1, 9)) + Array.from({ length: r.int(15, 25) }, () => r.int(0, 9)).join('');
  // well-formed, but no such coupon
  return String(r.int(2_000_000, 999_999_999)) + String(r.int(0, 999_999));
}

const BASE36 = '0123456789abcdefghijklmnopqrstuvwxyz';
const NONCE_CHARS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

function mutateId(r: Rng, id: string): string {
  const at = r.int(0, id.length - 1);
  const c = r.pick([...NONCE_CHARS, '-', '_', '.', ' ', '%', '\u0000', 'Ä', '🎉']);
  switch (r.int(0, 5)) {
    case 0:
      return id.slice(0, at) + c + id.slice(at + 1);
    case 1:
      return id.slice(0, at) + c + id.slice(at);
    case 2:
      return id.slice(0, at) + id.slice(at + 1);
    case 3:
      return id.slice(0, at);
    case 4:
      return id.toUpperCase();
    default:
      return id + c;
  }
}

type Endpoint =
  | 'POST /coupons'
  | 'GET /coupons/:id'
  | 'POST /coupons/:id/issue-requests'
  | 'GET /issue-requests/:id'
  | 'POST /coupons/:id/sync'
  | 'GET /coupons/:id/consistency'
  | 'other';

interface FuzzCase extends Outgoing {
  readonly endpoint: Endpoint;
}

interface World {
  readonly couponId: number;
  readonly requestIds: readonly string[];
}

/** Wrong ways to present the operator token; a quarter of the fuzzed POST /coupons use one. */
const WRONG_AUTH = [
  `Basic ${ADMIN_TOKEN}`,
  `Bearer: ${ADMIN_TOKEN}`,
  'Bearer',
  'Bearer wrong',
  `Bearer ${ADMIN_TOKEN}0`,
  ADMIN_TOKEN,
  '',
];

/** An authorization header (or none), right a given share of the time. */
function randomAuthorization(r: Rng, right: number): Record<string, string> {
  const roll = r.next();
  if (roll < right) return { ...ADMIN };
  if (roll < right + (1 - right) * 0.75) return { authorization: r.pick(WRONG_AUTH) };
  return {};
}

const carriesToken = (headers: Readonly<Record<string, string>>) =>
  (headers.authorization ?? '').includes(ADMIN_TOKEN);

function randomCase(r: Rng, world: World): FuzzCase {
  const roll = r.next();
  if (roll < 0.18) {
    // POST /coupons: mostly with the operator token, so validation is what is exercised
    const headers: Record<string, string> = {};
    const auth = r.next();
    if (auth < 0.75) headers.authorization = `Bearer ${ADMIN_TOKEN}`;
    else if (auth < 0.95) headers.authorization = r.pick(WRONG_AUTH);
    const plausible = () =>
      corruptedObject(r, {
        name: JSON.stringify(r.chance(0.5) ? 'Spring sale' : randomString(r)),
        totalQuantity: r.pick(NUMBER_LITERALS),
        ...(r.chance(0.4) ? { startsAt: JSON.stringify(r.pick(DATE_STRINGS)) } : {}),
        ...(r.chance(0.4) ? { endsAt: JSON.stringify(r.pick(DATE_STRINGS)) } : {}),
      });
    const post = randomPostBody(r, plausible);
    const authorised = (headers.authorization ?? '').includes(ADMIN_TOKEN);
    if (authorised && mayBeValidCouponBody(post.body)) return randomCase(r, world);
    return {
      endpoint: 'POST /coupons',
      method: 'POST',
      path: '/coupons',
      headers: { ...headers, ...post.headers },
      ...(post.body === undefined ? {} : { body: post.body }),
    };
  }
  if (roll < 0.36) {
    const segment = r.chance(0.5) ? String(world.couponId) : randomCouponSegment(r);
    const plausible = () =>
      corruptedObject(r, { userId: JSON.stringify(r.chance(0.3) ? 'carol' : randomString(r)) });
    const post = randomPostBody(r, () =>
      r.chance(0.5) ? `{"userId":${JSON.stringify(randomString(r))}}` : plausible(),
    );
    if (mayNameExistingCoupon(segment) && mayBeValidIssueBody(post.body))
      return randomCase(r, world);
    return {
      endpoint: 'POST /coupons/:id/issue-requests',
      method: 'POST',
      path: `/coupons/${segment}/issue-requests`,
      ...(post.body === undefined ? {} : { body: post.body }),
      headers: post.headers,
    };
  }
  if (roll < 0.52) {
    const segment = randomCouponSegment(r);
    if (mayNameExistingCoupon(segment)) return randomCase(r, world);
    return { endpoint: 'GET /coupons/:id', method: 'GET', path: `/coupons/${segment}` };
  }
  if (roll < 0.69) {
    let segment: string;
    const kind = r.next();
    if (kind < 0.45) segment = encodeSegment(mutateId(r, r.pick(world.requestIds)));
    else if (kind < 0.6) segment = encodeSegment(randomString(r));
    else if (kind < 0.85) {
      const arrival = Array.from({ length: r.int(1, 13) }, () => r.pick([...BASE36])).join('');
      const nonce = Array.from({ length: r.int(9, 11) }, () => r.pick([...NONCE_CHARS])).join('');
      segment = `${r.chance(0.8) ? world.couponId : r.pick(NUMERIC_JUNK)}-${arrival}-${nonce}`;
    } else segment = r.pick(RAW_JUNK) + (r.chance(0.5) ? r.pick(world.requestIds) : '');
    const decoded = decodesTo(segment);
    if (decoded !== undefined && world.requestIds.includes(decoded)) return randomCase(r, world);
    return {
      endpoint: 'GET /issue-requests/:id',
      method: 'GET',
      path: `/issue-requests/${segment}`,
    };
  }
  if (roll < 0.82) {
    // POST /coupons/:id/sync: a sync that got through would rebuild the gate, so every one sent
    // lacks the token, presents it wrongly, or names an id that is surely malformed
    const segment = r.chance(0.5) ? String(world.couponId) : randomCouponSegment(r);
    const authorization = randomAuthorization(r, 0.35);
    if (carriesToken(authorization) && !isMalformedCouponSegment(segment))
      return randomCase(r, world);
    // The route reads no body; one is sent half the time, in any shape.
    const post = r.chance(0.5)
      ? randomPostBody(r, () => (r.chance(0.5) ? VALID_COUPON_TEXT : randomJson(r, 2)))
      : { headers: {} };
    return {
      endpoint: 'POST /coupons/:id/sync',
      method: 'POST',
      path: `/coupons/${segment}/sync`,
      headers: { ...post.headers, ...authorization },
      ...(post.body === undefined ? {} : { body: post.body }),
    };
  }
  if (roll < 0.93) {
    // GET /coupons/:id/consistency only reads, but a check that got through would not be a refusal
    const segment = r.chance(0.5) ? String(world.couponId) : randomCouponSegment(r);
    const authorization = randomAuthorization(r, 0.5);
    if (carriesToken(authorization) && mayNameExistingCoupon(segment)) return randomCase(r, world);
    return {
      endpoint: 'GET /coupons/:id/consistency',
      method: 'GET',
      path: `/coupons/${segment}/consistency`,
      headers: authorization,
    };
  }
  // closing with a bad id or bad credentials, wrong methods on known paths, paths that do not exist
  const junk = encodeSegment(randomString(r));
  if (r.chance(0.3)) {
    const segment = r.chance(0.3) ? String(world.couponId) : randomCouponSegment(r);
    const authorization = r.chance(0.5) ? ADMIN.authorization : r.pick(WRONG_AUTH);
    if (authorization.includes(ADMIN_TOKEN) && mayNameExistingCoupon(segment)) {
      return randomCase(r, world);
    }
    return {
      endpoint: 'other',
      method: 'POST',
      path: `/coupons/${segment}/close`,
      headers: { authorization },
    };
  }
  if (r.chance(0.15)) {
    // the operator routes under the methods they do not take, for the real coupon too
    const segment = r.chance(0.5) ? String(world.couponId) : junk;
    const [method, action] = r.pick([
      ['GET', 'sync'],
      ['POST', 'consistency'],
    ] as const);
    return {
      endpoint: 'other',
      method,
      path: `/coupons/${segment}/${action}`,
      ...(method === 'GET'
        ? { headers: ADMIN }
        : { headers: { ...ADMIN, ...JSON_TYPE }, body: '{}' }),
    };
  }
  if (r.chance(0.6)) {
    const path = r.pick([
      '/coupons',
      `/coupons/${junk}`,
      `/coupons/${junk}/issue-requests`,
      `/coupons/${junk}/close`,
      `/coupons/${junk}/sync`,
      `/coupons/${junk}/consistency`,
      `/coupons/${world.couponId}/sync`,
      `/coupons/${world.couponId}/consistency`,
      `/issue-requests/${junk}`,
      '/health',
    ]);
    return {
      endpoint: 'other',
      method: r.pick(['PUT', 'DELETE', 'PATCH']),
      path,
      headers: { ...ADMIN, ...JSON_TYPE },
      body: '{}',
    };
  }
  const path = `/${r.pick(['api', 'v1', 'coupon', 'couponz', 'issue-request', 'admin', '.env', 'static'])}/${junk}`;
  const method = r.pick(['GET', 'POST', 'PUT', 'DELETE', 'PATCH']);
  return {
    endpoint: 'other',
    method,
    path,
    ...(method === 'GET' ? {} : { body: '{}', headers: JSON_TYPE }),
  };
}

function describeRequest(c: FuzzCase): string {
  const body =
    c.body === undefined
      ? '(no body)'
      : typeof c.body === 'string'
        ? show(c.body, 300)
        : `bytes ${Buffer.from(c.body).toString('hex').slice(0, 300)}`;
  return `${c.method} ${c.path.slice(0, 200)} ${JSON.stringify(c.headers ?? {})} ${body}`;
}

async function runPool<I>(
  items: readonly I[],
  concurrency: number,
  work: (item: I, index: number) => Promise<void>,
) {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next;
      next += 1;
      await work(items[index] as I, index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
}

// ---------------------------------------------------------------------------
// The suite
// ---------------------------------------------------------------------------

describe('bad input', function () {
  let h: Harness;
  let couponId: number;
  let issuedId: string;
  let pendingId: string;

  /** Another nonce for the same coupon and arrival. */
  const otherNonce = (id: string) =>
    id.slice(0, -10) + (id.endsWith('A'.repeat(10)) ? 'B' : 'A').repeat(10);

  const resolve = (path: string) =>
    path
      .replaceAll('{coupon}', String(couponId))
      .replaceAll('{issued~}', otherNonce(issuedId))
      .replaceAll('{pending~}', otherNonce(pendingId))
      .replaceAll('{issued}', issuedId)
      .replaceAll('{pending}', pendingId);

  before(async function () {
    h = await startHarness();
    // Real state to compare against: a coupon, one request decided into PostgreSQL, one still waiting in Redis.
    couponId = await createCoupon(h.baseUrl, { name: 'Bad input target', totalQuantity: 10 });
    const issued = await requestIssue(h.baseUrl, couponId, 'alice');
    expect(issued.status, JSON.stringify(issued.body)).to.equal(202);
    issuedId = issued.body.requestId;
    expect(await drainAll(h.container)).to.equal(1);
    const pending = await requestIssue(h.baseUrl, couponId, 'bob');
    expect(pending.status, JSON.stringify(pending.body)).to.equal(202);
    pendingId = pending.body.requestId;
  });

  after(async function () {
    await h?.cleanup();
  });

  describe('hand-written table', function () {
    let before_: Awaited<ReturnType<typeof snapshot>>;
    let answered = 0;
    const total = TABLE.reduce((n, [, cases]) => n + cases.length, 0);

    before(async function () {
      before_ = await snapshot(h.container, h.prefix);
    });

    for (const [group, cases] of TABLE) {
      describe(group, function () {
        for (const c of cases) {
          it(`when ${c.when}, then ${c.status} ${c.code}`, async function () {
            const path = resolve(c.path);
            const answer = await send(h.baseUrl, { ...c, path });
            answered += 1;
            const context = `${c.method} ${path.slice(0, 100)}`;
            const body = expectProblem(answer, c.status, c.code, context);
            const sentUrl = new URL(h.baseUrl + path);
            expect(body.instance, context).to.equal(sentUrl.pathname + sentUrl.search);
            if (c.status === 401) expect(answer.headers.get('www-authenticate')).to.equal('Bearer');
            if (c.code === 'VALIDATION_FAILED') {
              expect(body.errors, context).to.be.an('array');
              expect((body.errors as unknown[]).length, context).to.be.greaterThan(0);
              for (const e of body.errors as unknown[]) {
                expect(e, context).to.have.all.keys('path', 'message');
              }
              const named = namedFields(body);
              for (const field of c.mentions ?? [])
                expect(named, `${context} names ${field}`).to.include(field);
              for (const field of c.spares ?? [])
                expect(named, `${context} spares ${field}`).not.to.include(field);
            } else {
              expect(body, context).not.to.have.property('errors');
            }
          });
        }
      });
    }

    describe('afterwards', function () {
      it(`when all ${total} table requests have been answered, then Redis and PostgreSQL are byte-for-byte unchanged`, async function () {
        expect(answered, 'every table request must have run first').to.equal(total);
        const after_ = await snapshot(h.container, h.prefix);
        expect(after_).to.deep.equal(before_);
      });
    });
  });

  describe(`generated fuzz run (seed 0x${FUZZ_SEED.toString(16)}, ${FUZZ_COUNT} requests)`, function () {
    let before_: Awaited<ReturnType<typeof snapshot>>;
    let sent = 0;

    before(async function () {
      before_ = await snapshot(h.container, h.prefix);
    });

    it(`when ${FUZZ_COUNT} seeded malformed requests hit all six endpoints, then every answer is a 4xx problem with a code`, async function () {
      this.timeout(90_000);
      const r = new Rng(FUZZ_SEED);
      const world: World = { couponId, requestIds: [issuedId, pendingId] };
      const cases = Array.from({ length: FUZZ_COUNT }, () => randomCase(r, world));

      const failures: string[] = [];
      const perEndpoint = new Map<Endpoint, number>();
      const codes = new Map<string, number>();
      const codesPerEndpoint = new Map<Endpoint, Set<string>>();
      await runPool(cases, FUZZ_CONCURRENCY, async (c, index) => {
        perEndpoint.set(c.endpoint, (perEndpoint.get(c.endpoint) ?? 0) + 1);
        let answer: Answer;
        try {
          answer = await send(h.baseUrl, c);
        } catch (err) {
          failures.push(`#${index} ${describeRequest(c)} → network error ${String(err)}`);
          return;
        }
        sent += 1;
        const code = typeof answer.body?.code === 'string' ? answer.body.code : '';
        codes.set(`${answer.status} ${code}`, (codes.get(`${answer.status} ${code}`) ?? 0) + 1);
        const seenHere = codesPerEndpoint.get(c.endpoint) ?? new Set<string>();
        codesPerEndpoint.set(c.endpoint, seenHere.add(`${answer.status} ${code}`));
        const ok =
          answer.status >= 400 &&
          answer.status < 500 &&
          answer.contentType.startsWith('application/problem+json') &&
          code !== '' &&
          answer.body?.status === answer.status;
        if (!ok) {
          failures.push(
            `#${index} ${describeRequest(c)} → ${answer.status} ${answer.contentType} ${answer.text.slice(0, 200)}`,
          );
        }
      });

      const seed = `seed 0x${FUZZ_SEED.toString(16)} (rerun with BAD_INPUT_SEED=${FUZZ_SEED})`;
      expect(
        failures,
        `${seed}: ${failures.length} bad answers, first ones:\n${failures.slice(0, 10).join('\n')}`,
      ).to.deep.equal([]);

      // The run must actually reach every endpoint and every kind of refusal, or it proves little.
      for (const [endpoint, least] of [
        ['POST /coupons', 500],
        ['GET /coupons/:id', 500],
        ['POST /coupons/:id/issue-requests', 500],
        ['GET /issue-requests/:id', 500],
        ['POST /coupons/:id/sync', 250],
        ['GET /coupons/:id/consistency', 250],
      ] as const) {
        expect(perEndpoint.get(endpoint) ?? 0, `${seed}: requests to ${endpoint}`).to.be.at.least(
          least,
        );
      }
      // The operator routes must be refused for each reason, not only for the missing token.
      for (const [endpoint, expected] of [
        [
          'POST /coupons/:id/sync',
          ['400 VALIDATION_FAILED', '400 BAD_REQUEST', '401 UNAUTHORIZED'],
        ],
        [
          'GET /coupons/:id/consistency',
          ['400 VALIDATION_FAILED', '400 BAD_REQUEST', '401 UNAUTHORIZED', '404 COUPON_NOT_FOUND'],
        ],
      ] as const) {
        const here = [...(codesPerEndpoint.get(endpoint) ?? [])];
        for (const answer of expected) {
          expect(here, `${seed}: answers from ${endpoint}`).to.include(answer);
        }
      }
      const seen = [...codes.keys()];
      for (const expected of [
        '400 VALIDATION_FAILED',
        '400 INVALID_JSON',
        '400 BAD_REQUEST',
        '401 UNAUTHORIZED',
        '404 NOT_FOUND',
        '404 COUPON_NOT_FOUND',
        '404 REQUEST_NOT_FOUND',
        '405 METHOD_NOT_ALLOWED',
        '413 PAYLOAD_TOO_LARGE',
        '415 UNSUPPORTED_MEDIA_TYPE',
      ]) {
        expect(
          seen,
          `${seed}: answers seen ${JSON.stringify(Object.fromEntries(codes))}`,
        ).to.include(expected);
      }
    });

    it('when the fuzz run is over, then Redis and PostgreSQL are byte-for-byte unchanged', async function () {
      expect(sent, 'the fuzz run must have been answered first').to.equal(FUZZ_COUNT);
      const after_ = await snapshot(h.container, h.prefix);
      expect(after_, `seed 0x${FUZZ_SEED.toString(16)}`).to.deep.equal(before_);
    });
  });
});

// ---------------------------------------------------------------------------
// Part 3: bad credentials, with users' tokens configured (JWT_SECRET)
// ---------------------------------------------------------------------------

const jwtPart = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
const hourFromNow = () => Math.floor(Date.now() / 1000) + 3600;

interface TokenCase {
  readonly when: string;
  readonly method: 'GET' | 'POST';
  /** May hold {coupon} and {pending}. */
  readonly path: string;
  /** The Authorization header, built when the case runs; undefined sends none. */
  readonly authorization: () => Promise<string | undefined>;
  readonly body?: string;
  readonly status: number;
  readonly code: string;
}

const asBearer = async (token: Promise<string>) => `Bearer ${await token}`;
const WRONG_SECRET = 'not-the-configured-secret-0123456789abcdef';

/** Every bad credential, as a header factory. */
const BAD_CREDENTIALS: [string, () => Promise<string | undefined>, string][] = [
  ['no Authorization header', async () => undefined, 'UNAUTHORIZED'],
  ['"Bearer" and no token', async () => 'Bearer', 'INVALID_TOKEN'],
  ['a token that is not a JWT', async () => 'Bearer abc.def', 'INVALID_TOKEN'],
  ['Basic credentials', async () => 'Basic YWxpY2U6cHc=', 'INVALID_TOKEN'],
  ['an expired token', () => asBearer(userToken('alice', { exp: 1_000_000_000 })), 'INVALID_TOKEN'],
  ['a token without exp', () => asBearer(userToken('alice', { exp: undefined })), 'INVALID_TOKEN'],
  [
    'a token signed with another secret',
    () => asBearer(userToken('alice', {}, WRONG_SECRET)),
    'INVALID_TOKEN',
  ],
  [
    'an unsigned token (alg none)',
    async () =>
      `Bearer ${jwtPart({ alg: 'none' })}.${jwtPart({ sub: 'alice', exp: hourFromNow() })}.`,
    'INVALID_TOKEN',
  ],
  [
    'a token whose signature was cut',
    async () => `Bearer ${(await userToken('alice')).slice(0, -2)}`,
    'INVALID_TOKEN',
  ],
  [
    'a token whose sub breaks the user id rules',
    () => asBearer(userToken('al ice')),
    'INVALID_TOKEN',
  ],
  [
    'a token whose sub is a number',
    () => asBearer(userToken('x', { sub: 42 as never })),
    'INVALID_TOKEN',
  ],
  [
    'an expired operator token',
    () => asBearer(userToken('olga', { roles: ['operator'], exp: 1_000_000_000 })),
    'INVALID_TOKEN',
  ],
];

const TOKEN_TABLE: TokenCase[] = [
  ...BAD_CREDENTIALS.map(([when, authorization, code]) => ({
    when: `POST /coupons/:id/issue-requests is sent with ${when}`,
    method: 'POST' as const,
    path: '/coupons/{coupon}/issue-requests',
    authorization,
    body: '{"userId":"alice"}',
    status: 401,
    code,
  })),
  ...BAD_CREDENTIALS.map(([when, authorization, code]) => ({
    when: `GET /issue-requests/:id is sent with ${when}`,
    method: 'GET' as const,
    path: '/issue-requests/{pending}',
    authorization,
    status: 401,
    code,
  })),
  ...BAD_CREDENTIALS.map(([when, authorization, code]) => ({
    when: `POST /coupons/:id/close is sent with ${when}`,
    method: 'POST' as const,
    path: '/coupons/{coupon}/close',
    authorization,
    status: 401,
    code,
  })),
  {
    when: 'POST /coupons/:id/issue-requests is sent with ADMIN_TOKEN (not a user)',
    method: 'POST',
    path: '/coupons/{coupon}/issue-requests',
    authorization: async () => `Bearer ${ADMIN_TOKEN}`,
    body: '{}',
    status: 401,
    code: 'INVALID_TOKEN',
  },
  {
    when: 'POST /coupons/:id/issue-requests is sent with a bad token and malformed JSON (the token first)',
    method: 'POST',
    path: '/coupons/{coupon}/issue-requests',
    authorization: () => asBearer(userToken('alice', {}, WRONG_SECRET)),
    body: '{',
    status: 401,
    code: 'INVALID_TOKEN',
  },
  {
    when: "POST /coupons/:id/issue-requests names another user in the body than the token's",
    method: 'POST',
    path: '/coupons/{coupon}/issue-requests',
    authorization: () => asBearer(userToken('alice')),
    body: '{"userId":"mallory"}',
    status: 403,
    code: 'USER_MISMATCH',
  },
  {
    when: 'POST /coupons/:id/issue-requests with a valid token and a malformed body userId',
    method: 'POST',
    path: '/coupons/{coupon}/issue-requests',
    authorization: () => asBearer(userToken('alice')),
    body: '{"userId":"a b"}',
    status: 400,
    code: 'VALIDATION_FAILED',
  },
  {
    when: 'POST /coupons/:id/issue-requests with a valid token and an unknown field',
    method: 'POST',
    path: '/coupons/{coupon}/issue-requests',
    authorization: () => asBearer(userToken('alice')),
    body: '{"user":"alice"}',
    status: 400,
    code: 'VALIDATION_FAILED',
  },
  {
    when: "GET /issue-requests/:id names another user's pending request",
    method: 'GET',
    path: '/issue-requests/{pending}',
    authorization: () => asBearer(userToken('mallory')),
    status: 404,
    code: 'REQUEST_NOT_FOUND',
  },
  ...(
    [
      ['POST', '/coupons'],
      ['POST', '/coupons/{coupon}/close'],
      ['POST', '/coupons/{coupon}/sync'],
      ['GET', '/coupons/{coupon}/consistency'],
    ] as const
  ).map(([method, path]) => ({
    when: `${method} ${path} is sent with a user's valid token`,
    method,
    path,
    authorization: () => asBearer(userToken('alice')),
    ...(method === 'POST' && path === '/coupons' ? { body: VALID_COUPON_TEXT } : {}),
    status: 403,
    code: 'FORBIDDEN',
  })),
];

const WWW_AUTHENTICATE: Record<string, string> = {
  UNAUTHORIZED: 'Bearer',
  INVALID_TOKEN: 'Bearer error="invalid_token"',
  FORBIDDEN: 'Bearer error="insufficient_scope"',
};

describe('bad input with users’ tokens configured', function () {
  let h: Harness;
  let couponId: number;
  let pendingId: string;
  let before_: Awaited<ReturnType<typeof snapshot>>;
  let answered = 0;

  before(async function () {
    h = await startHarness({ env: { JWT_SECRET } });
    couponId = await createCoupon(h.baseUrl, { name: 'Token target', totalQuantity: 10 });
    const pending = await fetch(`${h.baseUrl}/coupons/${couponId}/issue-requests`, {
      method: 'POST',
      headers: { ...JSON_TYPE, authorization: `Bearer ${await userToken('bob')}` },
      body: '{}',
    });
    expect(pending.status).to.equal(202);
    pendingId = ((await pending.json()) as { requestId: string }).requestId;
    before_ = await snapshot(h.container, h.prefix);
  });
  after(async function () {
    await h?.cleanup();
  });

  for (const c of TOKEN_TABLE) {
    it(`when ${c.when}, then ${c.status} ${c.code}`, async function () {
      const path = c.path
        .replaceAll('{coupon}', String(couponId))
        .replaceAll('{pending}', pendingId);
      const authorization = await c.authorization();
      const answer = await send(h.baseUrl, {
        method: c.method,
        path,
        headers: {
          ...(c.body === undefined ? {} : JSON_TYPE),
          ...(authorization === undefined ? {} : { authorization }),
        },
        ...(c.body === undefined ? {} : { body: c.body }),
      });
      answered += 1;
      const body = expectProblem(answer, c.status, c.code, `${c.method} ${path}`);
      expect(body.instance).to.equal(path);
      expect(answer.headers.get('www-authenticate')).to.equal(WWW_AUTHENTICATE[c.code] ?? null);
    });
  }

  it(`when all ${TOKEN_TABLE.length} requests have been answered, then Redis and PostgreSQL are byte-for-byte unchanged`, async function () {
    expect(answered).to.equal(TOKEN_TABLE.length);
    expect(await snapshot(h.container, h.prefix)).to.deep.equal(before_);
  });
});
