CREATE TABLE "chainbill_api"."btc_addresses" (
	"wallet_id" text NOT NULL,
	"index" integer NOT NULL,
	"address" text NOT NULL,
	"script" text NOT NULL,
	"invoice_id" text NOT NULL,
	"received_at" timestamp with time zone,
	CONSTRAINT "btc_addresses_wallet_id_index_pk" PRIMARY KEY("wallet_id","index")
);
--> statement-breakpoint
CREATE TABLE "chainbill_api"."btc_blocks" (
	"network" text NOT NULL,
	"height" integer NOT NULL,
	"hash" text NOT NULL,
	"time" bigint NOT NULL,
	CONSTRAINT "btc_blocks_network_height_pk" PRIMARY KEY("network","height")
);
--> statement-breakpoint
CREATE TABLE "chainbill_api"."btc_invoices" (
	"id" text PRIMARY KEY NOT NULL,
	"merchant_id" text NOT NULL,
	"wallet_id" text NOT NULL,
	"network" text NOT NULL,
	"address" text NOT NULL,
	"address_index" integer NOT NULL,
	"script" text NOT NULL,
	"amount_sats" bigint NOT NULL,
	"expires_at" bigint NOT NULL,
	"details_hash" text NOT NULL,
	"description" text,
	"line_items" jsonb,
	"customer_id" text,
	"customer_email" text,
	"metadata" jsonb,
	"refund_address" text,
	"notified" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"sequence" bigint DEFAULT nextval('chainbill_api.invoices_sequence_seq') NOT NULL
);
--> statement-breakpoint
CREATE TABLE "chainbill_api"."btc_payments" (
	"txid" text NOT NULL,
	"vout" integer NOT NULL,
	"invoice_id" text NOT NULL,
	"merchant_id" text NOT NULL,
	"amount_sats" bigint NOT NULL,
	"inputs" jsonb NOT NULL,
	"rbf" boolean NOT NULL,
	"block_hash" text,
	"block_height" integer,
	"block_time" bigint,
	"first_seen" bigint NOT NULL,
	"late" boolean NOT NULL,
	"removed_at" timestamp with time zone,
	"removed_reason" text,
	CONSTRAINT "btc_payments_txid_vout_pk" PRIMARY KEY("txid","vout")
);
--> statement-breakpoint
CREATE TABLE "chainbill_api"."btc_refunds" (
	"id" text PRIMARY KEY NOT NULL,
	"invoice_id" text NOT NULL,
	"merchant_id" text NOT NULL,
	"destination" text NOT NULL,
	"destination_script" text NOT NULL,
	"amount_sats" bigint NOT NULL,
	"fee_sats" bigint NOT NULL,
	"txid" text NOT NULL,
	"inputs" jsonb NOT NULL,
	"psbt" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"seen_txid" text,
	"paid_sats" bigint,
	"block_hash" text,
	"block_height" integer,
	"block_time" bigint
);
--> statement-breakpoint
CREATE TABLE "chainbill_api"."btc_wallets" (
	"id" text PRIMARY KEY NOT NULL,
	"merchant_id" text NOT NULL,
	"network" text NOT NULL,
	"script" text NOT NULL,
	"descriptor" text NOT NULL,
	"gap_limit" integer DEFAULT 20 NOT NULL,
	"confirmations" integer DEFAULT 1 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"retired_at" timestamp with time zone
);
--> statement-breakpoint
CREATE UNIQUE INDEX "btc_addresses_script" ON "chainbill_api"."btc_addresses" USING btree ("script");--> statement-breakpoint
CREATE INDEX "btc_invoices_merchant_sequence" ON "chainbill_api"."btc_invoices" USING btree ("merchant_id","sequence");--> statement-breakpoint
CREATE INDEX "btc_invoices_script" ON "chainbill_api"."btc_invoices" USING btree ("script","sequence");--> statement-breakpoint
CREATE INDEX "btc_invoices_network_sequence" ON "chainbill_api"."btc_invoices" USING btree ("network","sequence");--> statement-breakpoint
CREATE INDEX "btc_invoices_unconfirmed" ON "chainbill_api"."btc_invoices" USING btree ("network") WHERE ("chainbill_api"."btc_invoices"."notified" ->> 'status') IN ('paid', 'partially_refunded', 'refunded') AND ("chainbill_api"."btc_invoices"."notified" ->> 'confirmed') IS DISTINCT FROM 'true';--> statement-breakpoint
CREATE INDEX "btc_invoices_open" ON "chainbill_api"."btc_invoices" USING btree ("network","expires_at") WHERE coalesce("chainbill_api"."btc_invoices"."notified" ->> 'status', 'open') = 'open';--> statement-breakpoint
CREATE INDEX "btc_invoices_customer" ON "chainbill_api"."btc_invoices" USING btree ("merchant_id","customer_id");--> statement-breakpoint
CREATE INDEX "btc_payments_invoice" ON "chainbill_api"."btc_payments" USING btree ("invoice_id");--> statement-breakpoint
CREATE INDEX "btc_refunds_invoice" ON "chainbill_api"."btc_refunds" USING btree ("invoice_id");--> statement-breakpoint
CREATE UNIQUE INDEX "btc_wallets_active" ON "chainbill_api"."btc_wallets" USING btree ("merchant_id") WHERE "chainbill_api"."btc_wallets"."retired_at" IS NULL;