/**
 * Alerts and alert rules (api/alerts.ts): the alerts raised for the merchant, newest first; every rule with the
 * settings that apply to the merchant; and changing a rule (enable, disable, thresholds), which is audited.
 */
import { OpenAPIHono, createRoute, z } from "@hono/zod-openapi";
import { and, desc, eq, lt } from "drizzle-orm";
import { ALERT_RULE_NAMES, ALERT_RULES, alertRuleFor, alertRulesFor, isAlertRule, type AlertRuleDefinition, type EffectiveAlertRule } from "../alerts";
import { appendAudit, auditFrom } from "../audit";
import { currentMerchant, requireScope } from "../auth";
import { encodeCursor, requireCursor } from "../cursor";
import type { ApiDeps, AppEnv } from "../env";
import { validationHook } from "../middleware";
import { problem, type FieldError } from "../problems";
import { idempotent } from "../idempotency";
import { BEARER, OptionalIdempotencyHeaders, problemResponses, queryInteger } from "../schemas";
import { alertRules, alerts } from "../store/schema";

const RuleNameSchema = z.enum(ALERT_RULE_NAMES as [keyof typeof ALERT_RULES, ...(keyof typeof ALERT_RULES)[]]);

const AlertSchema = z
  .object({
    id: z.string(),
    rule: RuleNameSchema,
    message: z.string(),
    details: z.record(z.string(), z.unknown()).openapi({ description: "What triggered it (the event id, counts, amounts in base units)" }),
    createdAt: z.string(),
  })
  .openapi("Alert");

const SettingsSchema = z.record(z.string(), z.number()).openapi({
  description: `Per rule: ${ALERT_RULE_NAMES.map((rule) => `${rule} {${Object.keys(ALERT_RULES[rule].defaults).join(", ")}}`).join("; ")}`,
  example: { maxCount: 10 },
});

const AlertRuleSchema = z
  .object({
    rule: RuleNameSchema,
    description: z.string(),
    enabled: z.boolean(),
    settings: SettingsSchema.openapi({ description: "The settings that apply: the defaults with the merchant's own over them" }),
    defaults: z.record(z.string(), z.number()),
    customized: z.boolean().openapi({ description: "Whether the merchant changed this rule" }),
  })
  .openapi("AlertRule");

const ListAlertsQuery = z.object({
  limit: queryInteger(1, 100).default(20),
  cursor: z.string().max(600).optional().openapi({ description: "nextCursor of the previous page" }),
});

const UpdateRuleBody = z
  .object({
    enabled: z.boolean().optional().openapi({ description: "Omitted: unchanged" }),
    settings: SettingsSchema.optional().openapi({
      description: "Replaces the merchant's settings of the rule: settings not given take their defaults (`{}` resets them). Omitted: unchanged.",
    }),
  })
  .strict()
  .openapi("UpdateAlertRule");

function ruleView(rule: EffectiveAlertRule) {
  return {
    rule: rule.rule,
    description: ALERT_RULES[rule.rule].description,
    enabled: rule.enabled,
    settings: rule.settings,
    defaults: { ...ALERT_RULES[rule.rule].defaults } as Record<string, number>,
    customized: rule.customized,
  };
}

/** The rule's own settings schema, with errors reported as `settings.<name>` like the validation hook does. */
function ruleSettings(definition: AlertRuleDefinition, settings: Record<string, number>): Record<string, number> {
  const parsed = definition.settings.safeParse(settings);
  if (parsed.success) return Object.fromEntries(Object.entries(parsed.data).filter((entry): entry is [string, number] => entry[1] !== undefined));
  const errors: FieldError[] = parsed.error.issues.flatMap((issue) => {
    const parent = ["settings", ...issue.path.map(String)];
    if (issue.code === "unrecognized_keys" && issue.keys.length) {
      return issue.keys.map((key) => ({ field: [...parent, key].join("."), message: "is not a known field" }));
    }
    return [{ field: parent.join("."), message: issue.message }];
  });
  throw problem.validation(errors);
}

export function alertRoutes(deps: ApiDeps) {
  const app = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });
  const db = deps.store.db;

  const list = createRoute({
    method: "get",
    path: "/alerts",
    tags: ["Alerts"],
    summary: "Alerts raised for the merchant, newest first",
    description: "Each alert is also an `alert.raised` event (webhooks, `GET /v1/events`). `GET /v1/alert-rules` lists the rules that raise them.",
    security: BEARER,
    middleware: [requireScope("merchant:read")] as const,
    request: { query: ListAlertsQuery },
    responses: {
      200: { description: "A page of alerts", content: { "application/json": { schema: z.object({ data: z.array(AlertSchema), nextCursor: z.string().nullable() }) } } },
      ...problemResponses(401, 403, 422, 429),
    },
  });
  app.openapi(list, async (c) => {
    const merchant = currentMerchant(c);
    const query = c.req.valid("query");
    const before = query.cursor ? Number(requireCursor(query.cursor, 1, ([sequence]) => /^[1-9]\d{0,14}$/.test(sequence))[0]) : undefined;
    const rows = await db
      .select()
      .from(alerts)
      .where(and(eq(alerts.merchantId, merchant.id), before === undefined ? undefined : lt(alerts.sequence, before)))
      .orderBy(desc(alerts.sequence))
      .limit(query.limit + 1);
    const page = rows.slice(0, query.limit);
    const data = page.map((row) => ({
      id: row.id,
      rule: row.rule as z.infer<typeof RuleNameSchema>,
      message: row.message,
      details: row.details,
      createdAt: row.createdAt.toISOString(),
    }));
    const last = page.at(-1);
    return c.json({ data, nextCursor: rows.length > query.limit && last ? encodeCursor([last.sequence]) : null }, 200);
  });

  const listRules = createRoute({
    method: "get",
    path: "/alert-rules",
    tags: ["Alerts"],
    summary: "Every alert rule with the settings that apply to the merchant",
    description: "Every rule is enabled with its defaults until the merchant changes it (`PUT /v1/alert-rules/{rule}`).",
    security: BEARER,
    middleware: [requireScope("merchant:read")] as const,
    responses: {
      200: { description: "The rules", content: { "application/json": { schema: z.object({ data: z.array(AlertRuleSchema) }) } } },
      ...problemResponses(401, 403, 429),
    },
  });
  app.openapi(listRules, async (c) => c.json({ data: (await alertRulesFor(db, currentMerchant(c).id)).map(ruleView) }, 200));

  const updateRule = createRoute({
    method: "put",
    path: "/alert-rules/{rule}",
    tags: ["Alerts"],
    summary: "Enable or disable an alert rule, or change its settings",
    description: `Settings are checked per rule (whole numbers within limits; unknown names refused). Rules: ${ALERT_RULE_NAMES.map((rule) => `\`${rule}\`: ${ALERT_RULES[rule].description}`).join(" ")}`,
    security: BEARER,
    middleware: [requireScope("merchant:write"), idempotent(deps.store.db, { required: false })] as const,
    request: {
      headers: OptionalIdempotencyHeaders,
      params: z.object({ rule: z.string().max(64).openapi({ param: { name: "rule", in: "path" }, example: "refunds_per_hour" }) }),
      body: { required: true, content: { "application/json": { schema: UpdateRuleBody } } },
    },
    responses: {
      200: { description: "The rule as it now applies", content: { "application/json": { schema: AlertRuleSchema } } },
      ...problemResponses(400, 401, 403, 404, 413, 415, 422, 429),
    },
  });
  app.openapi(updateRule, async (c) => {
    const merchant = currentMerchant(c);
    const name = c.req.valid("param").rule;
    if (!isAlertRule(name)) throw problem.notFound(`Alert rule ${name}`);
    const body = c.req.valid("json");
    const settings = body.settings === undefined ? undefined : ruleSettings(ALERT_RULES[name], body.settings);
    const updated = await db.transaction(async (tx) => {
      // Locks the merchant's row of the rule (when there is one), so concurrent changes are audited in order.
      const [existing] = await tx
        .select({ settings: alertRules.settings })
        .from(alertRules)
        .where(and(eq(alertRules.merchantId, merchant.id), eq(alertRules.rule, name)))
        .for("update");
      const current = await alertRuleFor(tx, merchant.id, name);
      const enabled = body.enabled ?? current.enabled;
      const own = settings ?? existing?.settings ?? {};
      await tx
        .insert(alertRules)
        .values({ merchantId: merchant.id, rule: name, enabled, settings: own })
        .onConflictDoUpdate({ target: [alertRules.merchantId, alertRules.rule], set: { enabled, settings: own, updatedAt: new Date() } });
      const after = await alertRuleFor(tx, merchant.id, name);
      await appendAudit(
        tx,
        auditFrom(c, "alert_rule.update", name, {
          before: { enabled: current.enabled, settings: current.settings },
          after: { enabled: after.enabled, settings: after.settings },
        }),
      );
      return after;
    });
    return c.json(ruleView(updated), 200);
  });

  return app;
}
