/**
 * The local Bitcoin chain `npm start` runs when no Bitcoin source is configured: a **simulated regtest chain
 * in this process** (scripts/lib/bitcoin-regtest/chain.ts, not a Bitcoin node and not a real network) served as
 * an Esplora API on a loopback port, with controls to pay and mine (`POST /regtest/pay`, `/regtest/mine`). It
 * mines a block every few seconds while transactions wait, stamps blocks with the wall clock, and is kept in
 * the data directory so a restart continues the same chain.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { RegtestChain } from "./chain";
import { startEsplora, type BitcoinServer } from "./servers";

export interface LocalRegtest {
  url: string;
  chain: RegtestChain;
  server: BitcoinServer;
  stop(): Promise<void>;
}

export async function startLocalRegtest(options: { directory: string; port: number; blockSeconds: number }): Promise<LocalRegtest> {
  mkdirSync(options.directory, { recursive: true });
  const file = path.join(options.directory, "chain.json");
  let chain: RegtestChain;
  try {
    chain = existsSync(file) ? RegtestChain.restore(readFileSync(file, "utf8"), { wallClock: true }) : new RegtestChain({ wallClock: true });
  } catch {
    chain = new RegtestChain({ wallClock: true }); // an unreadable save: a new chain (the watcher sees a reorg to it)
  }
  chain.fund();
  const save = () => writeFileSync(file, chain.snapshot());
  save();
  const server = await startEsplora(chain, { port: options.port, control: { onChange: save } });
  const timer = setInterval(() => {
    if (chain.mempool.size === 0) return;
    chain.mine();
    save();
  }, options.blockSeconds * 1_000);
  timer.unref();
  return {
    url: server.url,
    chain,
    server,
    async stop() {
      clearInterval(timer);
      save();
      await server.close();
    },
  };
}
