/**
 * `/docs`: Swagger UI over `/openapi.json`, with its assets served from the installed swagger-ui-dist package
 * (no CDN, works offline). A pasted API key lives only in the page's memory (never persisted to storage), and
 * the page's Content-Security-Policy lets it load and call nothing but this server.
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import { Hono } from "hono";

const ASSETS: Record<string, string> = {
  "swagger-ui.css": "text/css; charset=utf-8",
  "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
  "swagger-ui-standalone-preset.js": "text/javascript; charset=utf-8",
};

const PAGE = `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>chainbill API reference</title>
  <link rel="stylesheet" href="/docs/assets/swagger-ui.css">
</head>
<body>
  <div id="swagger"></div>
  <script src="/docs/assets/swagger-ui-bundle.js"></script>
  <script src="/docs/assets/init.js"></script>
</body>
</html>`;

/** Only this origin: scripts, styles (Swagger UI sets inline styles), images it embeds as data URIs, and the API. */
const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const INIT = `window.ui = SwaggerUIBundle({ url: "/openapi.json", dom_id: "#swagger", deepLinking: true, persistAuthorization: false });`;

export function docsRoutes() {
  const app = new Hono();
  const directory = path.dirname(require.resolve("swagger-ui-dist/package.json"));
  app.get("/docs", (c) =>
    c.html(PAGE, 200, {
      "content-security-policy": CSP,
      "x-content-type-options": "nosniff",
      "referrer-policy": "no-referrer",
      "x-frame-options": "DENY",
    }),
  );
  app.get("/docs/assets/init.js", (c) => c.body(INIT, 200, { "content-type": "text/javascript; charset=utf-8" }));
  app.get("/docs/assets/:file", async (c) => {
    const file = c.req.param("file");
    const type = ASSETS[file];
    if (!type) return c.notFound();
    const content = await readFile(path.join(directory, file));
    return c.body(content, 200, { "content-type": type, "cache-control": "public, max-age=86400" });
  });
  return app;
}
