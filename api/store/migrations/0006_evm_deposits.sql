CREATE TABLE "chainbill_api"."evm_deposits" (
	"invoice_id" text PRIMARY KEY NOT NULL,
	"chain_id" integer NOT NULL,
	"balance" text NOT NULL,
	"block" bigint NOT NULL,
	"first_seen_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "chainbill_api"."invoices" ADD COLUMN "deposit_address" text;--> statement-breakpoint
CREATE INDEX "invoices_deposit_watch" ON "chainbill_api"."invoices" USING btree ("chain_id","expires_at") WHERE "chainbill_api"."invoices"."deposit_address" IS NOT NULL;