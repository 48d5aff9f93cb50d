ALTER TABLE "chainbill_api"."invoices" ADD COLUMN "max_fee_bps" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "chainbill_api"."invoices" DROP COLUMN "voided_at";