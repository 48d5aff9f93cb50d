/**
 * `/problems/<type>`: the page behind every problem `type` URI, from the catalogue in api/problems.ts — what
 * happened and what to do next. HTML for people, JSON for `Accept: application/json`.
 */
import { Hono } from "hono";
import { PROBLEM_TYPES, type ProblemSlug } from "../problems";

const escape = (text: string) => text.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`);
const inline = (text: string) => escape(text).replace(/`([^`]+)`/g, "<code>$1</code>");

export function problemRoutes() {
  const app = new Hono();
  app.get("/problems", (c) => {
    const rows = Object.entries(PROBLEM_TYPES)
      .map(([slug, type]) => `<tr><td>${type.status}</td><td><a href="/problems/${slug}">${slug}</a></td><td>${escape(type.title)}</td></tr>`)
      .join("\n");
    return c.html(page("chainbill API problem types", `<table><tr><th>status</th><th>type</th><th>title</th></tr>${rows}</table>`));
  });
  app.get("/problems/:slug", (c) => {
    const slug = c.req.param("slug");
    if (!Object.hasOwn(PROBLEM_TYPES, slug)) return c.text("No such problem type.", 404);
    const type = PROBLEM_TYPES[slug as ProblemSlug];
    if ((c.req.header("accept") ?? "").includes("application/json")) {
      return c.json({ type: `/problems/${slug}`, status: type.status, title: type.title, explanation: type.explanation });
    }
    return c.html(page(`${type.title} (${type.status})`, `<p><code>/problems/${slug}</code></p><p>${inline(type.explanation)}</p><p><a href="/problems">All problem types</a></p>`));
  });
  return app;
}

function page(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${escape(title)}</title></head><body><h1>${escape(title)}</h1>${body}</body></html>`;
}
