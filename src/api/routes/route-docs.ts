import { z, type ZodType } from 'zod';
import {
  acceptedIssueRequest,
  couponPage,
  couponStats,
  couponView,
  createdCoupon,
  issueRequestView,
  operatorReport,
  probe,
} from '../schemas.js';
import {
  couponIdParam,
  createCouponBody,
  issueRequestBody,
  listCouponsQuery,
  updateCouponBody,
} from '../validation.js';
import type { RouteName } from './route-table.js';

export interface RouteDoc {
  readonly summary: string;
  readonly tag: 'issue requests' | 'coupons' | 'operators' | 'probes' | 'description' | 'dashboard';
  /** `user`: a user's JWT; `operator`: ADMIN_TOKEN or an operator's JWT. */
  readonly auth?: 'user' | 'operator';
  readonly params?: Readonly<Record<string, ZodType>>;
  /** The query string's fields (all optional strings on the wire). */
  readonly query?: ZodType;
  readonly body?: ZodType;
  /** Answers other than problems, by status. */
  readonly responses: Readonly<
    Record<
      number,
      { readonly description: string; readonly schema?: ZodType; readonly type?: string }
    >
  >;
  /** Statuses this route answers with problem+json, besides 429 and 5xx (every route has those). */
  readonly problems: readonly number[];
}

const couponId = { couponId: couponIdParam };
const requestId = { requestId: z.string().min(1).max(128) };
const operatorProblems = [400, 401, 403, 404] as const;

/**
 * The API description of each row of the route table, keyed like ROUTES: the
 * schemas are the ones the handlers parse with (validation.ts) and the answers'
 * shapes (schemas.ts). `satisfies` makes a row without an entry a type error.
 */
export const ROUTE_DOCS = {
  submitIssueRequest: {
    summary: 'Ask for a coupon: queued in arrival order, decided by the batch worker',
    tag: 'issue requests',
    auth: 'user',
    params: couponId,
    body: issueRequestBody,
    responses: {
      202: {
        description: 'Queued (or the pending request the user already has)',
        schema: acceptedIssueRequest,
      },
    },
    problems: [400, 401, 403, 404, 409, 413, 415],
  },
  getIssueRequest: {
    summary: 'The status of an issue request (its owner or an operator)',
    tag: 'issue requests',
    auth: 'user',
    params: requestId,
    responses: { 200: { description: 'The request', schema: issueRequestView } },
    problems: [401, 404, 410],
  },
  createCoupon: {
    summary: 'Create a coupon event',
    tag: 'operators',
    auth: 'operator',
    body: createCouponBody,
    responses: { 201: { description: 'Created', schema: createdCoupon } },
    problems: [400, 401, 403, 413, 415],
  },
  getCoupon: {
    summary: 'A coupon event and what is left of it',
    tag: 'coupons',
    params: couponId,
    responses: { 200: { description: 'The coupon', schema: couponView } },
    problems: [400, 404],
  },
  closeCoupon: {
    summary: 'Close an event: no more requests are accepted',
    tag: 'operators',
    auth: 'operator',
    params: couponId,
    responses: { 200: { description: 'The closed coupon', schema: couponView } },
    problems: [...operatorProblems],
  },
  syncCoupon: {
    summary: 'Rebuild the coupon’s Redis state from PostgreSQL',
    tag: 'operators',
    auth: 'operator',
    params: couponId,
    responses: { 200: { description: 'What the sync changed', schema: operatorReport } },
    problems: [...operatorProblems, 409],
  },
  checkConsistency: {
    summary: 'Compare the coupon’s Redis state with PostgreSQL',
    tag: 'operators',
    auth: 'operator',
    params: couponId,
    responses: { 200: { description: 'The comparison', schema: operatorReport } },
    problems: [...operatorProblems],
  },
  listCoupons: {
    summary: 'Events newest first, with live figures, filtered by status, a page at a time',
    tag: 'operators',
    auth: 'operator',
    query: listCouponsQuery,
    responses: { 200: { description: 'A page of events', schema: couponPage } },
    problems: [400, 401, 403],
  },
  updateCoupon: {
    summary: 'Edit name, window or quantity (shrinks only down to what is issued or being decided)',
    tag: 'operators',
    auth: 'operator',
    params: couponId,
    body: updateCouponBody,
    responses: { 200: { description: 'The coupon', schema: couponView } },
    problems: [...operatorProblems, 409, 413, 415],
  },
  openCoupon: {
    summary: 'Open a scheduled event now',
    tag: 'operators',
    auth: 'operator',
    params: couponId,
    responses: { 200: { description: 'The coupon', schema: couponView } },
    problems: [...operatorProblems, 409],
  },
  pauseCoupon: {
    summary: 'Pause: no request accepted or decided; queued requests keep their places',
    tag: 'operators',
    auth: 'operator',
    params: couponId,
    responses: { 200: { description: 'The coupon', schema: couponView } },
    problems: [...operatorProblems, 409],
  },
  resumeCoupon: {
    summary: 'Resume a paused event: waiting requests are decided in arrival order',
    tag: 'operators',
    auth: 'operator',
    params: couponId,
    responses: { 200: { description: 'The coupon', schema: couponView } },
    problems: [...operatorProblems],
  },
  couponStats: {
    summary:
      'Remaining, queued, in flight, issued, rejected by reason, and rates of the last minute',
    tag: 'operators',
    auth: 'operator',
    params: couponId,
    responses: { 200: { description: 'The figures', schema: couponStats } },
    problems: [...operatorProblems],
  },
  health: {
    summary: 'Every check, for people',
    tag: 'probes',
    responses: {
      200: { description: 'Healthy', schema: probe },
      503: { description: 'Degraded', schema: probe },
    },
    problems: [],
  },
  healthz: {
    summary: 'Liveness: the process answers',
    tag: 'probes',
    responses: { 200: { description: 'Alive', schema: probe } },
    problems: [],
  },
  readyz: {
    summary: 'Readiness: whether this process should get traffic',
    tag: 'probes',
    responses: {
      200: { description: 'Ready', schema: probe },
      503: { description: 'Not ready, with the failing checks', schema: probe },
    },
    problems: [],
  },
  openapi: {
    summary: 'This document',
    tag: 'description',
    responses: { 200: { description: 'OpenAPI 3.1', schema: z.looseObject({}) } },
    problems: [],
  },
  docs: {
    summary: 'This document as a page (Swagger UI)',
    tag: 'description',
    responses: { 200: { description: 'HTML', type: 'text/html' } },
    problems: [],
  },
  docsAsset: {
    summary: 'The page’s scripts and styles',
    tag: 'description',
    params: { file: z.string() },
    responses: {
      200: { description: 'A file of swagger-ui-dist', type: 'application/octet-stream' },
    },
    problems: [404],
  },
  dashboard: {
    summary:
      'The operators’ live page of the events (holds no data: it asks for the credential and calls the operator routes)',
    tag: 'dashboard',
    responses: { 200: { description: 'HTML', type: 'text/html' } },
    problems: [],
  },
  dashboardAsset: {
    summary: 'The dashboard’s script and styles, and uPlot’s',
    tag: 'dashboard',
    params: { file: z.string() },
    responses: {
      200: { description: 'A script or a style sheet', type: 'application/octet-stream' },
    },
    problems: [404],
  },
  metrics: {
    summary:
      'Prometheus metrics of every process of the service (Bearer METRICS_TOKEN when set; never rate limited)',
    tag: 'probes',
    responses: {
      200: { description: 'Prometheus text format 0.0.4', type: 'text/plain; version=0.0.4' },
    },
    problems: [401, 404],
  },
} as const satisfies Record<RouteName, RouteDoc>;
