ALTER TABLE "issue_requests" ALTER COLUMN "request_id" SET DATA TYPE text COLLATE "C";--> statement-breakpoint
ALTER TABLE "issue_requests" ALTER COLUMN "user_id" SET DATA TYPE text COLLATE "C";--> statement-breakpoint
ALTER TABLE "issued_coupons" ALTER COLUMN "user_id" SET DATA TYPE text COLLATE "C";--> statement-breakpoint
ALTER TABLE "issued_coupons" ALTER COLUMN "request_id" SET DATA TYPE text COLLATE "C";--> statement-breakpoint
ALTER TABLE "worker_batches" ALTER COLUMN "batch_id" SET DATA TYPE text COLLATE "C";