CREATE SCHEMA "chainbill_api";
--> statement-breakpoint
CREATE TABLE "chainbill_api"."api_keys" (
	"id" text PRIMARY KEY NOT NULL,
	"merchant_id" text NOT NULL,
	"name" text NOT NULL,
	"prefix" text NOT NULL,
	"hash" text NOT NULL,
	"scopes" jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"revoked_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "chainbill_api"."idempotency_records" (
	"merchant_id" text NOT NULL,
	"key" text NOT NULL,
	"request_hash" text NOT NULL,
	"status_code" integer,
	"response_body" jsonb,
	"completed" boolean DEFAULT false NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "idempotency_records_merchant_id_key_pk" PRIMARY KEY("merchant_id","key")
);
--> statement-breakpoint
CREATE TABLE "chainbill_api"."invoices" (
	"id" text PRIMARY KEY NOT NULL,
	"merchant_id" text NOT NULL,
	"chain_id" integer NOT NULL,
	"onchain_merchant_id" bigint NOT NULL,
	"invoice_ref" text NOT NULL,
	"invoice_key" text NOT NULL,
	"escrow_address" text NOT NULL,
	"currency" text NOT NULL,
	"token" text NOT NULL,
	"decimals" integer NOT NULL,
	"amount" text NOT NULL,
	"payer" text NOT NULL,
	"arbiter" text NOT NULL,
	"expires_at" bigint NOT NULL,
	"hold_duration" integer NOT NULL,
	"fulfill_by" bigint NOT NULL,
	"details_hash" text NOT NULL,
	"signature" text NOT NULL,
	"description" text,
	"line_items" jsonb,
	"customer_id" text,
	"customer_email" text,
	"metadata" jsonb,
	"voided_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"sequence" bigint GENERATED ALWAYS AS IDENTITY (sequence name "chainbill_api"."invoices_sequence_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1)
);
--> statement-breakpoint
CREATE TABLE "chainbill_api"."merchants" (
	"id" text PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"signer_address" text NOT NULL,
	"signer_key_encrypted" text NOT NULL,
	"payout_address" text NOT NULL,
	"owner_address" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX "api_keys_hash" ON "chainbill_api"."api_keys" USING btree ("hash");--> statement-breakpoint
CREATE INDEX "api_keys_merchant" ON "chainbill_api"."api_keys" USING btree ("merchant_id");--> statement-breakpoint
CREATE UNIQUE INDEX "invoices_key" ON "chainbill_api"."invoices" USING btree ("chain_id","invoice_key");--> statement-breakpoint
CREATE INDEX "invoices_merchant_sequence" ON "chainbill_api"."invoices" USING btree ("merchant_id","sequence");--> statement-breakpoint
CREATE INDEX "invoices_customer" ON "chainbill_api"."invoices" USING btree ("merchant_id","customer_id");