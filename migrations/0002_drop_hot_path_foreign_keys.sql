ALTER TABLE "issue_requests" DROP CONSTRAINT "issue_requests_coupon_id_coupons_id_fk";
--> statement-breakpoint
ALTER TABLE "issue_requests" DROP CONSTRAINT "issue_requests_issue_id_issued_coupons_id_fk";
--> statement-breakpoint
ALTER TABLE "issued_coupons" DROP CONSTRAINT "issued_coupons_coupon_id_coupons_id_fk";
