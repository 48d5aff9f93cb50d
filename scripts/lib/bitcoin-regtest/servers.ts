/**
 * Loopback HTTP servers that answer like an Esplora REST API and like Bitcoin Core's JSON-RPC, from the
 * in-memory regtest chain (scripts/lib/bitcoin-regtest/chain.ts): the documented paths, methods, formats and error
 * answers (404 / RPC error -5 for unknown ids, -26 for a refused transaction). Faults can be queued — a request
 * that never gets an answer, 429 with Retry-After, 503 — to test the clients' retries.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { parseTransaction } from "../../../api/bitcoin/source";
import type { ChainBlock, RegtestChain } from "./chain";

export type Fault = "hang" | "429" | "503";

export interface BitcoinServer {
  url: string;
  /** Faults answered to the next requests, in order. */
  faults: Fault[];
  /** Requests received, by path (Esplora) or method (Core). */
  requests: string[];
  close(): Promise<void>;
}

function compactSize(value: number): Buffer {
  if (value < 0xfd) return Buffer.from([value]);
  const buffer = Buffer.alloc(3);
  buffer[0] = 0xfd;
  buffer.writeUInt16LE(value, 1);
  return buffer;
}

export function rawBlock(block: ChainBlock): Buffer {
  return Buffer.concat([Buffer.from(block.header, "hex"), compactSize(block.txs.length), ...block.txs.map((tx) => Buffer.from(tx.raw, "hex"))]);
}

async function listen(
  handler: (request: http.IncomingMessage, body: string, response: http.ServerResponse) => void,
  faults: Fault[],
  requests: string[],
  label: (request: http.IncomingMessage, body: string) => string,
  port = 0,
): Promise<BitcoinServer> {
  const hanging = new Set<http.ServerResponse>();
  const server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8");
      requests.push(label(request, body));
      const fault = faults.shift();
      if (fault === "hang") {
        hanging.add(response);
        return;
      }
      if (fault === "429") return void response.writeHead(429, { "retry-after": "1", "content-type": "text/plain" }).end("Too Many Requests");
      if (fault === "503") return void response.writeHead(503, { "content-type": "text/plain" }).end("Service Unavailable");
      handler(request, body, response);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => resolve());
  });
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    faults,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        for (const response of hanging) response.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Esplora's REST API (https://github.com/Blockstream/esplora/blob/master/API.md) over the regtest chain. */
export interface EsploraOptions {
  port?: number;
  /**
   * A local chain's controls (npm start, the demo): `POST /regtest/mine {"blocks": n}` and
   * `POST /regtest/pay {"address", "amountSats"}` (paid from the chain's own wallet, as a customer's).
   */
  control?: { onChange(): void };
}

export function startEsplora(chain: RegtestChain, options: EsploraOptions = {}): Promise<BitcoinServer> {
  const byHash = (hash: string) => chain.blocks.find((block) => block.hash === hash);
  const text = (response: http.ServerResponse, status: number, body: string) => response.writeHead(status, { "content-type": "text/plain" }).end(body);
  return listen(
    (request, body, response) => {
      const path = request.url ?? "/";
      let match: RegExpExecArray | null;
      if (request.method === "GET" && path === "/blocks/tip/height") return text(response, 200, String(chain.height));
      if (request.method === "GET" && (match = /^\/block-height\/(\d+)$/.exec(path))) {
        const block = chain.blocks[Number(match[1])];
        return block ? text(response, 200, block.hash) : text(response, 404, "Block not found");
      }
      if (request.method === "GET" && (match = /^\/block\/([0-9a-f]{64})\/raw$/.exec(path))) {
        const block = byHash(match[1]);
        return block ? response.writeHead(200, { "content-type": "application/octet-stream" }).end(rawBlock(block)) : text(response, 404, "Block not found");
      }
      if (request.method === "GET" && (match = /^\/tx\/([0-9a-f]{64})\/hex$/.exec(path))) {
        const found = chain.transaction(match[1]);
        return found ? text(response, 200, found.tx.raw) : text(response, 404, "Transaction not found");
      }
      if (request.method === "GET" && path === "/mempool/txids") return response.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify([...chain.mempool.keys()]));
      if (request.method === "GET" && path === "/fee-estimates") {
        return response.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ "1": 12.5, "2": 8.1, "3": 5.0, "6": 3.2, "144": 1.01 }));
      }
      if (options.control && request.method === "POST" && path.startsWith("/regtest/")) return regtestControl(chain, path, body, response, options.control);
      if (request.method === "POST" && path === "/tx") {
        try {
          const tx = chain.acceptRaw(body.trim());
          return text(response, 200, tx.txid);
        } catch (error) {
          return text(response, 400, `sendrawtransaction RPC error: {"code":-26,"message":"${(error as Error).message}"}`);
        }
      }
      return text(response, 404, "Not Found");
    },
    [],
    [],
    (request) => `${request.method} ${request.url}`,
    options.port,
  );
}

/** The local chain's controls: mine blocks, pay an address from the chain's wallet. */
function regtestControl(chain: RegtestChain, path: string, body: string, response: http.ServerResponse, control: { onChange(): void }): unknown {
  const json = (status: number, value: unknown) => response.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(value));
  let input: { blocks?: unknown; address?: unknown; amountSats?: unknown };
  try {
    input = body.trim() ? (JSON.parse(body) as typeof input) : {};
  } catch {
    return json(400, { error: "the body must be JSON" });
  }
  try {
    if (path === "/regtest/mine") {
      const blocks = input.blocks === undefined ? 1 : Number(input.blocks);
      if (!Number.isInteger(blocks) || blocks < 1 || blocks > 1_000) return json(400, { error: "blocks must be an integer from 1 to 1000" });
      const mined = chain.mine(blocks);
      control.onChange();
      return json(200, { height: chain.height, hashes: mined.map((block) => block.hash) });
    }
    if (path === "/regtest/pay") {
      if (typeof input.address !== "string" || typeof input.amountSats !== "string" || !/^[1-9]\d{0,15}$/.test(input.amountSats)) {
        return json(400, { error: 'send {"address": "bcrt1…", "amountSats": "150000"}' });
      }
      chain.fund();
      const tx = chain.pay(input.address, BigInt(input.amountSats));
      control.onChange();
      return json(200, { txid: tx.txid });
    }
  } catch (error) {
    return json(400, { error: (error as Error).message });
  }
  return json(404, { error: "POST /regtest/mine or /regtest/pay" });
}

/** Bitcoin Core's JSON-RPC over the regtest chain (the methods the source uses, with Core's error codes). */
export function startBitcoinCore(chain: RegtestChain, auth: { username: string; password: string }): Promise<BitcoinServer> {
  const expected = `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString("base64")}`;
  return listen(
    (request, body, response) => {
      if (request.headers.authorization !== expected) return void response.writeHead(401).end();
      const call = JSON.parse(body) as { id: number; method: string; params: unknown[] };
      const answer = (result: unknown, error: { code: number; message: string } | null = null, status = 200) =>
        response.writeHead(error ? (status === 200 ? 500 : status) : 200, { "content-type": "application/json" }).end(JSON.stringify({ result: error ? null : result, error, id: call.id }));
      const notFound = (message: string) => answer(null, { code: -5, message }, 404);
      switch (call.method) {
        case "getblockcount":
          return answer(chain.height);
        case "getblockhash": {
          const block = chain.blocks[call.params[0] as number];
          return block ? answer(block.hash) : answer(null, { code: -8, message: "Block height out of range" });
        }
        case "getblock": {
          const block = chain.blocks.find((candidate) => candidate.hash === call.params[0]);
          if (!block) return notFound("Block not found");
          return call.params[1] === 0 ? answer(rawBlock(block).toString("hex")) : answer(null, { code: -8, message: "the test node serves verbosity 0 only" });
        }
        case "getrawmempool":
          return answer([...chain.mempool.keys()]);
        case "getrawtransaction": {
          const found = chain.transaction(call.params[0] as string);
          return found ? answer(found.tx.raw) : notFound("No such mempool or blockchain transaction. Use gettransaction for wallet transactions.");
        }
        case "estimatesmartfee":
          return answer({ feerate: 0.00012, blocks: call.params[0] });
        case "sendrawtransaction":
          try {
            return answer(chain.acceptRaw(call.params[0] as string).txid);
          } catch (error) {
            return answer(null, { code: -26, message: (error as Error).message });
          }
        default:
          return answer(null, { code: -32601, message: "Method not found" }, 404);
      }
    },
    [],
    [],
    (_request, body) => {
      try {
        return (JSON.parse(body) as { method: string }).method;
      } catch {
        return "?";
      }
    },
  );
}

export { parseTransaction };
