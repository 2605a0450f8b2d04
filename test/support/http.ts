import { ADMIN_TOKEN } from './harness.js';

export interface HttpResult<T = Record<string, unknown>> {
  readonly status: number;
  readonly contentType: string;
  readonly headers: Headers;
  readonly body: T;
}

export async function http<T = Record<string, unknown>>(
  baseUrl: string,
  method: string,
  path: string,
  options: { body?: unknown; raw?: string; headers?: Record<string, string>; admin?: boolean } = {},
): Promise<HttpResult<T>> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.admin) headers.authorization = `Bearer ${ADMIN_TOKEN}`;
  let body: string | undefined = options.raw;
  if (options.body !== undefined) {
    body = JSON.stringify(options.body);
    headers['content-type'] ??= 'application/json';
  }
  const res = await fetch(baseUrl + path, { method, headers, body });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = text === '' ? null : JSON.parse(text);
  } catch {
    // leave as text
  }
  return {
    status: res.status,
    contentType: res.headers.get('content-type') ?? '',
    headers: res.headers,
    body: parsed as T,
  };
}

export async function createCoupon(
  baseUrl: string,
  body: Record<string, unknown> = { name: 'Test event', totalQuantity: 100 },
): Promise<number> {
  const res = await http<{ id: number }>(baseUrl, 'POST', '/coupons', { body, admin: true });
  if (res.status !== 201)
    throw new Error(`create coupon: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.id;
}

export function requestIssue(baseUrl: string, couponId: number, userId: string) {
  return http<{ requestId: string; status: string; code?: string }>(
    baseUrl,
    'POST',
    `/coupons/${couponId}/issue-requests`,
    { body: { userId } },
  );
}
