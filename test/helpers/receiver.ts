/**
 * A webhook receiver for tests: a real HTTP server on loopback that verifies every request with the
 * `standardwebhooks` package (the secret(s) it is given), records what arrived, and answers with the status the
 * test chooses. It can go down and come back on the same port (an outage).
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { Webhook } from "standardwebhooks";

export interface Received {
  id: string;
  timestamp: string;
  signature: string;
  body: string;
  event: { id: string; type: string; timestamp: string; data: Record<string, unknown> };
  /** Which of the receiver's secrets verified it (index), or -1 when none did. */
  verifiedWith: number;
  receivedAt: number;
}

export interface Receiver {
  url: string;
  port: number;
  received: Received[];
  /** Secrets tried in order when verifying (set after creating the endpoint). */
  secrets: string[];
  /** The status to answer each request with (default 200). */
  respond: (request: Received) => number;
  /** Requests per event id. */
  byEvent(): Map<string, Received[]>;
  down(): Promise<void>;
  up(): Promise<void>;
  close(): Promise<void>;
}

export async function startReceiver(options: { port?: number; path?: string } = {}): Promise<Receiver> {
  const path = options.path ?? "/webhooks";
  let server: http.Server | undefined;
  const receiver: Receiver = {
    url: "",
    port: options.port ?? 0,
    received: [],
    secrets: [],
    respond: () => 200,
    byEvent() {
      const map = new Map<string, Received[]>();
      for (const entry of receiver.received) map.set(entry.id, [...(map.get(entry.id) ?? []), entry]);
      return map;
    },
    async down() {
      if (!server) return;
      const closing = server;
      server = undefined;
      closing.closeAllConnections();
      await new Promise<void>((resolve) => closing.close(() => resolve()));
    },
    async up() {
      if (server) return;
      server = http.createServer((request, response) => {
        const chunks: Buffer[] = [];
        request.on("data", (chunk: Buffer) => chunks.push(chunk));
        request.on("end", () => {
          const body = Buffer.concat(chunks).toString("utf8");
          const headers = {
            "webhook-id": String(request.headers["webhook-id"] ?? ""),
            "webhook-timestamp": String(request.headers["webhook-timestamp"] ?? ""),
            "webhook-signature": String(request.headers["webhook-signature"] ?? ""),
          };
          let verifiedWith = -1;
          for (const [index, secret] of receiver.secrets.entries()) {
            try {
              new Webhook(secret).verify(body, headers);
              verifiedWith = index;
              break;
            } catch {
              // try the next secret
            }
          }
          let event: Received["event"];
          try {
            event = JSON.parse(body) as Received["event"];
          } catch {
            event = { id: "", type: "", timestamp: "", data: {} };
          }
          const entry: Received = {
            id: headers["webhook-id"],
            timestamp: headers["webhook-timestamp"],
            signature: headers["webhook-signature"],
            body,
            event,
            verifiedWith,
            receivedAt: Date.now(),
          };
          receiver.received.push(entry);
          const status = request.url === path ? receiver.respond(entry) : 404;
          response.writeHead(status, { "content-type": "text/plain" }).end(status < 300 ? "ok" : `refused with ${status}`);
        });
      });
      await new Promise<void>((resolve) => server!.listen(receiver.port, "127.0.0.1", () => resolve()));
      receiver.port = (server.address() as AddressInfo).port;
      receiver.url = `http://127.0.0.1:${receiver.port}${path}`;
    },
    close() {
      return receiver.down();
    },
  };
  await receiver.up();
  return receiver;
}
