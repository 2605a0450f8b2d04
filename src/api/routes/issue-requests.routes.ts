import type { IRouter, RequestHandler } from 'express';
import type { GetIssueRequest } from '../../domain/use-cases/get-issue-request.js';
import type { SubmitIssueRequest } from '../../domain/use-cases/submit-issue-request.js';
import type { UserLimitKind } from '../limits.js';
import { presentIssueRequest } from '../presenters.js';
import { sendJson } from '../respond.js';
import { couponIdParam, issueRequestBody, parse } from '../validation.js';
import { ROUTES, serve } from './route-table.js';

/**
 * The accept and status endpoints, registered straight on `router` (the app
 * itself): a nested Router is one more layer to walk, and one more
 * dispatch, for every request (paired saturation runs: about 6% of
 * throughput).
 */
export function issueRequestRoutes(
  router: IRouter,
  deps: {
    submitIssueRequest: SubmitIssueRequest;
    getIssueRequest: GetIssueRequest;
    /** Reads a JSON body, refusing other media types (see json-body.ts). */
    jsonBody: RequestHandler;
    /** The per-user limit (see limits.ts); absent when limits are off. */
    userLimit?: (kind: UserLimitKind) => RequestHandler;
  },
): void {
  const acceptLimit = deps.userLimit ? [deps.userLimit('accept')] : [];
  const statusLimit = deps.userLimit ? [deps.userLimit('status')] : [];
  serve(router, ROUTES.submitIssueRequest, deps.jsonBody, ...acceptLimit, async (req, res) => {
    const couponId = parse(couponIdParam, req.params.couponId, 'couponId');
    const { userId } = parse(issueRequestBody, req.body, 'body');
    const submitted = await deps.submitIssueRequest.execute(couponId, userId);
    sendJson(
      res,
      202,
      {
        requestId: submitted.requestId,
        couponId: submitted.couponId,
        userId: submitted.userId,
        status: submitted.status,
      },
      // Request ids are letters, digits and '-': nothing to percent-encode.
      { Location: `/issue-requests/${submitted.requestId}` },
    );
  });

  serve(router, ROUTES.getIssueRequest, ...statusLimit, async (req, res) => {
    const view = await deps.getIssueRequest.execute(String(req.params.requestId));
    sendJson(res, 200, presentIssueRequest(view));
  });
}
