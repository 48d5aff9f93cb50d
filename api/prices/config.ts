/**
 * Which price feeds the API reads on each chain: the deployment's `priceFeeds` (the mocks of a local
 * deployment, or feeds recorded by hand), overridden pair by pair by `CHAIN_<id>_PRICE_FEEDS`:
 *
 *   CHAIN_11155111_PRICE_FEEDS="ETH/USD=0x694AA1769357215DE4FAC081bf1f309aDC325306@3600,USDC/USD=0x…@86400"
 *
 * Each entry is `<BASE>/<QUOTE>=<feed address>@<heartbeat seconds>` (the heartbeat is on the feed's page at
 * data.chain.link; default 3600). See docs/PRICES.md.
 */
import { getAddress, isAddress, type Address } from "viem";
import type { Deployment } from "../../contracts/addresses";
import type { FeedConfig } from "./types";

const DEFAULT_HEARTBEAT_SECONDS = 3_600;
const PAIR = /^[A-Z0-9]{2,10}\/[A-Z]{3}$/;

export class PriceFeedConfigError extends Error {}

/** Parses `CHAIN_<id>_PRICE_FEEDS`; throws a PriceFeedConfigError naming the bad entry. */
export function parseFeedList(raw: string, variable = "price feeds"): Map<string, FeedConfig> {
  const feeds = new Map<string, FeedConfig>();
  for (const entry of raw.split(",").map((part) => part.trim()).filter(Boolean)) {
    const match = /^([^=]+)=(0x[0-9a-fA-F]{40})(?:@(\d{1,7}))?$/.exec(entry);
    const pair = match?.[1].trim().toUpperCase();
    if (!match || !pair || !PAIR.test(pair) || !isAddress(match[2], { strict: false })) {
      throw new PriceFeedConfigError(`${variable}: "${entry}" must look like ETH/USD=0x<feed address>@3600 (pair = feed address @ heartbeat seconds)`);
    }
    const heartbeat = match[3] === undefined ? DEFAULT_HEARTBEAT_SECONDS : Number(match[3]);
    if (heartbeat < 1) throw new PriceFeedConfigError(`${variable}: "${entry}" needs a heartbeat of at least 1 s`);
    feeds.set(pair, { pair, address: getAddress(match[2]) as Address, heartbeatSeconds: heartbeat });
  }
  return feeds;
}

/** The feeds of each chain: deployment first, then the environment's entries. */
export function loadPriceFeeds(chains: { id: number; deployment: Deployment }[], env: NodeJS.ProcessEnv = process.env): Map<number, Map<string, FeedConfig>> {
  const result = new Map<number, Map<string, FeedConfig>>();
  for (const chain of chains) {
    const feeds = new Map<string, FeedConfig>();
    for (const [pair, feed] of Object.entries(chain.deployment.priceFeeds ?? {})) {
      feeds.set(pair, { pair, address: feed.address, heartbeatSeconds: feed.heartbeatSeconds });
    }
    const id = chain.id;
    const raw = env[`CHAIN_${id}_PRICE_FEEDS`];
    if (raw) for (const [pair, feed] of parseFeedList(raw, `CHAIN_${id}_PRICE_FEEDS`)) feeds.set(pair, feed);
    result.set(chain.id, feeds);
  }
  return result;
}
