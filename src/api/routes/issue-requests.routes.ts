import type { IRouter, RequestHandler, Response } from 'express';
import type { GetIssueRequest } from '../../domain/use-cases/get-issue-request.js';
import type { Admission, SubmitIssueRequest } from '../../domain/use-cases/submit-issue-request.js';
import { callerOf, type Identity } from '../identity.js';
import type { UserLimitKind } from '../limits.js';
import type { HttpMetrics } from '../metrics.js';
import { presentIssueRequest } from '../presenters.js';
import { sendProblem } from '../problem.js';
import { sendJson } from '../respond.js';
import {
  couponIdParam,
  identifiedIssueRequestBody,
  issueRequestBody,
  parse,
} from '../validation.js';
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
    identity: Identity;
    /** The per-user limit (see limits.ts); absent when limits are off. */
    userLimit?: (kind: UserLimitKind) => RequestHandler;
    /** The counts the accept script takes for this request (see limits.ts). */
    admission?: (res: Response) => Admission | undefined;
    /** Takes the counts of a request answered before the accept script (see limits.ts). */
    chargeUnadmitted?: (res: Response) => void;
    /** Counts the queued requests; refusals are counted from their answers (see metrics.ts). */
    metrics?: Pick<HttpMetrics, 'accepted'>;
  },
): void {
  const acceptLimit = deps.userLimit ? [deps.userLimit('accept')] : [];
  const statusLimit = deps.userLimit ? [deps.userLimit('status')] : [];
  // The token is checked before the body is read: a client without one costs no more. The
  // per-user limit comes after both, so it counts the user the token (or the body) names;
  // the counts themselves are taken by the accept script, in the request's one round trip.
  serve(
    router,
    ROUTES.submitIssueRequest,
    deps.identity.user,
    deps.jsonBody,
    ...acceptLimit,
    async (req, res) => {
      const couponId = parse(couponIdParam, req.params.couponId, 'couponId');
      const caller = callerOf(res);
      let userId: string;
      if (caller?.kind === 'user') {
        const body = parse(identifiedIssueRequestBody, req.body, 'body');
        if (body.userId !== undefined && body.userId !== caller.userId) {
          deps.chargeUnadmitted?.(res);
          sendProblem(
            res,
            'USER_MISMATCH',
            'userId must be the user of the bearer token, or absent',
          );
          return;
        }
        userId = caller.userId;
      } else {
        // No identity configured: the body names the user.
        ({ userId } = parse(issueRequestBody, req.body, 'body'));
      }
      const submitted = await deps.submitIssueRequest.execute(
        couponId,
        userId,
        deps.admission?.(res),
      );
      deps.metrics?.accepted(submitted.created ? 'accepted' : 'repeat');
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
    },
  );

  serve(
    router,
    ROUTES.getIssueRequest,
    deps.identity.userOrOperator,
    ...statusLimit,
    async (req, res) => {
      const caller = callerOf(res);
      // A user sees only their own requests; anyone else's is answered as one that does not exist.
      const view = await deps.getIssueRequest.execute(
        String(req.params.requestId),
        caller?.kind === 'user' ? caller.userId : undefined,
      );
      sendJson(res, 200, presentIssueRequest(view));
    },
  );
}
