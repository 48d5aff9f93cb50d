CREATE TABLE "chainbill_api"."alert_rules" (
	"merchant_id" text NOT NULL,
	"rule" text NOT NULL,
	"enabled" boolean DEFAULT true NOT NULL,
	"settings" jsonb NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "alert_rules_merchant_id_rule_pk" PRIMARY KEY("merchant_id","rule")
);
--> statement-breakpoint
CREATE TABLE "chainbill_api"."alerts" (
	"id" text PRIMARY KEY NOT NULL,
	"merchant_id" text NOT NULL,
	"rule" text NOT NULL,
	"message" text NOT NULL,
	"details" jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"sequence" bigint GENERATED ALWAYS AS IDENTITY (sequence name "chainbill_api"."alerts_sequence_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1)
);
--> statement-breakpoint
CREATE TABLE "chainbill_api"."api_key_clients" (
	"api_key_id" text NOT NULL,
	"client" text NOT NULL,
	"first_seen_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "api_key_clients_api_key_id_client_pk" PRIMARY KEY("api_key_id","client")
);
--> statement-breakpoint
CREATE TABLE "chainbill_api"."audit_log" (
	"sequence" bigint PRIMARY KEY NOT NULL,
	"merchant_id" text,
	"actor" text NOT NULL,
	"api_key_id" text,
	"request_id" text,
	"action" text NOT NULL,
	"target" text,
	"details" jsonb NOT NULL,
	"created_at" timestamp with time zone NOT NULL,
	"previous_hash" text NOT NULL,
	"hash" text NOT NULL
);
--> statement-breakpoint
CREATE TABLE "chainbill_api"."event_cursors" (
	"name" text PRIMARY KEY NOT NULL,
	"position" bigint NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "chainbill_api"."webhook_attempts" (
	"id" bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "chainbill_api"."webhook_attempts_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"delivery_id" bigint NOT NULL,
	"endpoint_id" text NOT NULL,
	"event_id" text NOT NULL,
	"attempt" integer NOT NULL,
	"status_code" integer,
	"latency_ms" integer NOT NULL,
	"response_excerpt" text,
	"error" text,
	"worker" text NOT NULL,
	"attempted_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "chainbill_api"."webhook_deliveries" (
	"id" bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "chainbill_api"."webhook_deliveries_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"event_id" text NOT NULL,
	"endpoint_id" text NOT NULL,
	"merchant_id" text NOT NULL,
	"order_key" text NOT NULL,
	"event_sequence" bigint NOT NULL,
	"status" text DEFAULT 'pending' NOT NULL,
	"attempts" integer DEFAULT 0 NOT NULL,
	"next_attempt_at" timestamp with time zone DEFAULT now() NOT NULL,
	"locked_until" timestamp with time zone,
	"locked_by" text,
	"last_status_code" integer,
	"last_error" text,
	"completed_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "chainbill_api"."webhook_endpoints" (
	"id" text PRIMARY KEY NOT NULL,
	"merchant_id" text NOT NULL,
	"url" text NOT NULL,
	"description" text,
	"event_types" jsonb NOT NULL,
	"secret_encrypted" text NOT NULL,
	"previous_secret_encrypted" text,
	"previous_secret_expires_at" timestamp with time zone,
	"expires_at" timestamp with time zone,
	"disabled_at" timestamp with time zone,
	"disabled_reason" text,
	"failing_since" timestamp with time zone,
	"consecutive_failures" integer DEFAULT 0 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "chainbill_api"."webhook_events" (
	"id" text PRIMARY KEY NOT NULL,
	"merchant_id" text NOT NULL,
	"type" text NOT NULL,
	"payload" jsonb NOT NULL,
	"order_key" text NOT NULL,
	"chain_id" integer,
	"source_id" text,
	"block_number" bigint,
	"block_hash" text,
	"reverted_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"sequence" bigint GENERATED ALWAYS AS IDENTITY (sequence name "chainbill_api"."webhook_events_sequence_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1)
);
--> statement-breakpoint
ALTER TABLE "chainbill_api"."merchants" ADD COLUMN "confirmation_policy" jsonb DEFAULT '{}'::jsonb NOT NULL;--> statement-breakpoint
CREATE INDEX "alerts_merchant_sequence" ON "chainbill_api"."alerts" USING btree ("merchant_id","sequence");--> statement-breakpoint
CREATE INDEX "audit_log_merchant" ON "chainbill_api"."audit_log" USING btree ("merchant_id","sequence");--> statement-breakpoint
CREATE INDEX "webhook_attempts_endpoint" ON "chainbill_api"."webhook_attempts" USING btree ("endpoint_id","id");--> statement-breakpoint
CREATE INDEX "webhook_attempts_event" ON "chainbill_api"."webhook_attempts" USING btree ("event_id");--> statement-breakpoint
CREATE UNIQUE INDEX "webhook_deliveries_endpoint_event" ON "chainbill_api"."webhook_deliveries" USING btree ("endpoint_id","event_id");--> statement-breakpoint
CREATE INDEX "webhook_deliveries_due" ON "chainbill_api"."webhook_deliveries" USING btree ("status","next_attempt_at");--> statement-breakpoint
CREATE INDEX "webhook_deliveries_order" ON "chainbill_api"."webhook_deliveries" USING btree ("endpoint_id","order_key","event_sequence");--> statement-breakpoint
CREATE INDEX "webhook_endpoints_merchant" ON "chainbill_api"."webhook_endpoints" USING btree ("merchant_id");--> statement-breakpoint
CREATE INDEX "webhook_events_merchant_sequence" ON "chainbill_api"."webhook_events" USING btree ("merchant_id","sequence");--> statement-breakpoint
CREATE INDEX "webhook_events_chain_block" ON "chainbill_api"."webhook_events" USING btree ("chain_id","block_number");--> statement-breakpoint
CREATE OR REPLACE FUNCTION "chainbill_api"."audit_log_append_only"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit_log is append-only';
END;
$$;--> statement-breakpoint
CREATE TRIGGER "audit_log_append_only" BEFORE UPDATE OR DELETE ON "chainbill_api"."audit_log" FOR EACH ROW EXECUTE FUNCTION "chainbill_api"."audit_log_append_only"();--> statement-breakpoint
UPDATE "chainbill_api"."api_keys" SET "scopes" = "scopes" || '["webhooks:read"]'::jsonb WHERE "scopes" ? 'merchant:read' AND NOT "scopes" ? 'webhooks:read';--> statement-breakpoint
UPDATE "chainbill_api"."api_keys" SET "scopes" = "scopes" || '["webhooks:write"]'::jsonb WHERE "scopes" ? 'merchant:write' AND NOT "scopes" ? 'webhooks:write';
