ALTER TABLE "chainbill_api"."webhook_events" ADD COLUMN "confirmed_at" timestamp with time zone;--> statement-breakpoint
CREATE INDEX "webhook_events_unconfirmed" ON "chainbill_api"."webhook_events" USING btree ("chain_id","block_number") WHERE "chainbill_api"."webhook_events"."type" = 'invoice.paid' AND "chainbill_api"."webhook_events"."confirmed_at" IS NULL AND "chainbill_api"."webhook_events"."reverted_at" IS NULL;--> statement-breakpoint
UPDATE "chainbill_api"."webhook_events" AS paid SET "confirmed_at" = confirmed."created_at"
FROM "chainbill_api"."webhook_events" AS confirmed
WHERE paid."type" = 'invoice.paid' AND confirmed."type" = 'invoice.confirmed' AND confirmed."payload" -> 'data' ->> 'paidEventId' = paid."id";
