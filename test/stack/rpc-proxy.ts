/**
 * A stand-in for a remote RPC provider in front of a local Hardhat node: HTTP JSON-RPC and websocket
 * subscriptions are passed through unchanged, until the test makes the provider misbehave as real ones do —
 * `freeze()` holds every answer (a hung provider: HTTP responses wait, websocket traffic stops flowing) until
 * `thaw()`, and `dropSockets()` cuts every websocket (a subscription that dies). The one test double of the
 * stack tests, for what cannot run here: an RPC provider that fails.
 */
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from "node:http";
import { connect, type Socket } from "node:net";

export interface RpcProxy {
  url: string;
  wsUrl: string;
  freeze(): void;
  thaw(): void;
  /** Websocket connections open now stop delivering, silently and for good (new ones work): a dead subscription. */
  silenceSockets(): void;
  dropSockets(): void;
  close(): Promise<void>;
}

export async function startRpcProxy(upstream: string): Promise<RpcProxy> {
  const target = new URL(upstream);
  let frozen = false;
  let waiting: (() => void)[] = [];
  const sockets = new Set<Socket>();
  const silenced = new Set<Socket>();

  const whenThawed = () => (frozen ? new Promise<void>((resolve) => waiting.push(resolve)) : Promise.resolve());

  function forward(incoming: IncomingMessage, outgoing: ServerResponse) {
    const chunks: Buffer[] = [];
    incoming.on("data", (chunk: Buffer) => chunks.push(chunk));
    incoming.on("end", async () => {
      await whenThawed();
      const upstreamRequest = httpRequest(
        { host: target.hostname, port: target.port, path: incoming.url, method: incoming.method, headers: incoming.headers },
        async (answer) => {
          const body: Buffer[] = [];
          answer.on("data", (chunk: Buffer) => body.push(chunk));
          answer.on("end", async () => {
            await whenThawed();
            outgoing.writeHead(answer.statusCode ?? 502, answer.headers);
            outgoing.end(Buffer.concat(body));
          });
        },
      );
      upstreamRequest.on("error", () => {
        outgoing.writeHead(502);
        outgoing.end();
      });
      upstreamRequest.end(Buffer.concat(chunks));
    });
  }

  const server = createServer(forward);
  server.on("upgrade", (incoming: IncomingMessage, client: Socket, head: Buffer) => {
    const remote = connect(Number(target.port), target.hostname, () => {
      const lines = [`${incoming.method} ${incoming.url} HTTP/1.1`, ...Object.entries(incoming.headers).map(([name, value]) => `${name}: ${value}`), "", ""];
      remote.write(lines.join("\r\n"));
      if (head.length) remote.write(head);
      remote.pipe(client);
      client.pipe(remote);
      if (frozen) remote.pause();
    });
    for (const socket of [client, remote]) {
      sockets.add(socket);
      socket.on("error", () => undefined);
      socket.on("close", () => {
        sockets.delete(socket);
        client.destroy();
        remote.destroy();
      });
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;

  const thaw = () => {
    frozen = false;
    for (const socket of sockets) if (!silenced.has(socket)) socket.resume();
    const resume = waiting;
    waiting = [];
    for (const release of resume) release();
  };
  return {
    url: `http://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${port}`,
    freeze() {
      frozen = true;
      for (const socket of sockets) socket.pause();
    },
    thaw,
    silenceSockets() {
      for (const socket of sockets) {
        socket.pause();
        silenced.add(socket);
      }
    },
    dropSockets() {
      for (const socket of sockets) socket.destroy();
    },
    async close() {
      thaw();
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
