CREATE TABLE "coupons" (
	"id" bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "coupons_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"name" text NOT NULL,
	"total_quantity" integer NOT NULL,
	"issued_count" integer DEFAULT 0 NOT NULL,
	"starts_at" timestamp with time zone,
	"ends_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "coupons_total_positive" CHECK ("coupons"."total_quantity" > 0),
	CONSTRAINT "coupons_issued_within_total" CHECK ("coupons"."issued_count" >= 0 AND "coupons"."issued_count" <= "coupons"."total_quantity"),
	CONSTRAINT "coupons_window_ordered" CHECK ("coupons"."starts_at" IS NULL OR "coupons"."ends_at" IS NULL OR "coupons"."starts_at" < "coupons"."ends_at")
);
--> statement-breakpoint
CREATE TABLE "issue_requests" (
	"request_id" text PRIMARY KEY NOT NULL,
	"coupon_id" bigint NOT NULL,
	"user_id" text NOT NULL,
	"status" text NOT NULL,
	"reason" text,
	"issue_id" bigint,
	"requested_at" timestamp with time zone NOT NULL,
	"decided_at" timestamp with time zone NOT NULL,
	CONSTRAINT "issue_requests_outcome_consistent" CHECK (("issue_requests"."status" = 'ISSUED' AND "issue_requests"."reason" IS NULL AND "issue_requests"."issue_id" IS NOT NULL)
        OR ("issue_requests"."status" = 'REJECTED' AND "issue_requests"."reason" IS NOT NULL AND "issue_requests"."issue_id" IS NULL))
);
--> statement-breakpoint
CREATE TABLE "issued_coupons" (
	"id" bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "issued_coupons_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"coupon_id" bigint NOT NULL,
	"user_id" text NOT NULL,
	"request_id" text NOT NULL,
	"issued_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE TABLE "worker_batches" (
	"batch_id" text PRIMARY KEY NOT NULL,
	"coupon_id" bigint NOT NULL,
	"state" text NOT NULL,
	"size" integer NOT NULL,
	"recorded_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "issue_requests" ADD CONSTRAINT "issue_requests_coupon_id_coupons_id_fk" FOREIGN KEY ("coupon_id") REFERENCES "public"."coupons"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "issue_requests" ADD CONSTRAINT "issue_requests_issue_id_issued_coupons_id_fk" FOREIGN KEY ("issue_id") REFERENCES "public"."issued_coupons"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "issued_coupons" ADD CONSTRAINT "issued_coupons_coupon_id_coupons_id_fk" FOREIGN KEY ("coupon_id") REFERENCES "public"."coupons"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "issue_requests_coupon_idx" ON "issue_requests" USING btree ("coupon_id");--> statement-breakpoint
CREATE UNIQUE INDEX "issued_coupons_coupon_user_uq" ON "issued_coupons" USING btree ("coupon_id","user_id");--> statement-breakpoint
CREATE UNIQUE INDEX "issued_coupons_request_uq" ON "issued_coupons" USING btree ("request_id");