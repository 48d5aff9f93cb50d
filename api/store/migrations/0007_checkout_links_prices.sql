CREATE TABLE "chainbill_api"."payment_links" (
	"id" text PRIMARY KEY NOT NULL,
	"merchant_id" text NOT NULL,
	"name" text NOT NULL,
	"description" text,
	"pricing" text NOT NULL,
	"currency" text NOT NULL,
	"amount" text,
	"minimum_amount" text,
	"maximum_amount" text,
	"max_quantity" integer DEFAULT 1 NOT NULL,
	"accept" jsonb,
	"chain_id" integer,
	"single_use" boolean DEFAULT false NOT NULL,
	"line_item_description" text,
	"checkout" jsonb,
	"metadata" jsonb,
	"active" boolean DEFAULT true NOT NULL,
	"deactivated_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"sequence" bigint GENERATED ALWAYS AS IDENTITY (sequence name "chainbill_api"."payment_links_sequence_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1)
);
--> statement-breakpoint
ALTER TABLE "chainbill_api"."btc_invoices" ADD COLUMN "payment_link_id" text;--> statement-breakpoint
ALTER TABLE "chainbill_api"."btc_invoices" ADD COLUMN "price" jsonb;--> statement-breakpoint
ALTER TABLE "chainbill_api"."btc_invoices" ADD COLUMN "checkout" jsonb;--> statement-breakpoint
ALTER TABLE "chainbill_api"."invoices" ADD COLUMN "payment_link_id" text;--> statement-breakpoint
ALTER TABLE "chainbill_api"."invoices" ADD COLUMN "price" jsonb;--> statement-breakpoint
ALTER TABLE "chainbill_api"."invoices" ADD COLUMN "checkout" jsonb;--> statement-breakpoint
ALTER TABLE "chainbill_api"."merchants" ADD COLUMN "fiat_currency" text DEFAULT 'USD' NOT NULL;--> statement-breakpoint
ALTER TABLE "chainbill_api"."merchants" ADD COLUMN "rate_lock_seconds" integer DEFAULT 900 NOT NULL;--> statement-breakpoint
CREATE INDEX "payment_links_merchant_sequence" ON "chainbill_api"."payment_links" USING btree ("merchant_id","sequence");--> statement-breakpoint
CREATE INDEX "invoices_payment_link" ON "chainbill_api"."invoices" USING btree ("payment_link_id","sequence") WHERE "chainbill_api"."invoices"."payment_link_id" IS NOT NULL;