import express, { Router } from 'express';
import type { GetIssueRequest } from '../../domain/use-cases/get-issue-request.js';
import type { SubmitIssueRequest } from '../../domain/use-cases/submit-issue-request.js';
import { presentIssueRequest } from '../presenters.js';
import { couponIdParam, issueRequestBody, parse, requireJson } from '../validation.js';

export function issueRequestRoutes(deps: {
  submitIssueRequest: SubmitIssueRequest;
  getIssueRequest: GetIssueRequest;
  jsonBody: ReturnType<typeof express.json>;
}): Router {
  const router = Router({ caseSensitive: true });

  router.post('/coupons/:couponId/issue-requests', requireJson, deps.jsonBody, async (req, res) => {
    const couponId = parse(couponIdParam, req.params.couponId, 'couponId');
    const { userId } = parse(issueRequestBody, req.body, 'body');
    const submitted = await deps.submitIssueRequest.execute(couponId, userId);
    res.status(202).location(`/issue-requests/${submitted.requestId}`).json({
      requestId: submitted.requestId,
      couponId: submitted.couponId,
      userId: submitted.userId,
      status: submitted.status,
    });
  });

  router.get('/issue-requests/:requestId', async (req, res) => {
    const view = await deps.getIssueRequest.execute(String(req.params.requestId));
    res.json(presentIssueRequest(view));
  });

  return router;
}
