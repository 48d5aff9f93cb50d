CREATE TABLE "chainbill_api"."plan_price_changes" (
	"id" bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "chainbill_api"."plan_price_changes_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"chain_id" integer NOT NULL,
	"plan_id" integer NOT NULL,
	"reason" text NOT NULL,
	"fiat_amount" text NOT NULL,
	"previous_units" text,
	"price_units" text NOT NULL,
	"price" jsonb NOT NULL,
	"transaction_hash" text NOT NULL,
	"observed_at" bigint NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "chainbill_api"."plan_prices" (
	"chain_id" integer NOT NULL,
	"plan_id" integer NOT NULL,
	"merchant_id" text NOT NULL,
	"fiat_currency" text NOT NULL,
	"fiat_amount" text NOT NULL,
	"pay_currency" text NOT NULL,
	"token" text NOT NULL,
	"price_units" text NOT NULL,
	"price" jsonb NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	"checked_at" timestamp with time zone,
	"rate_unavailable" text,
	CONSTRAINT "plan_prices_chain_id_plan_id_pk" PRIMARY KEY("chain_id","plan_id")
);
--> statement-breakpoint
CREATE INDEX "plan_price_changes_plan" ON "chainbill_api"."plan_price_changes" USING btree ("chain_id","plan_id","observed_at");--> statement-breakpoint
CREATE INDEX "plan_prices_merchant" ON "chainbill_api"."plan_prices" USING btree ("merchant_id");