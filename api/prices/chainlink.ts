/**
 * Chainlink feeds read on-chain with viem: `latestRoundData()` and `decimals()` (read once per feed and kept)
 * of an AggregatorV3Interface, on the chain runtime's client; chain time from api/clock.ts.
 */
import type { Address } from "viem";
import type { ChainRuntime } from "../chains";
import { chainNow } from "../clock";
import type { FeedReader } from "./source";

export const aggregatorV3Abi = [
  { type: "function", name: "decimals", stateMutability: "view", inputs: [], outputs: [{ name: "", type: "uint8" }] },
  {
    type: "function",
    name: "latestRoundData",
    stateMutability: "view",
    inputs: [],
    outputs: [
      { name: "roundId", type: "uint80" },
      { name: "answer", type: "int256" },
      { name: "startedAt", type: "uint256" },
      { name: "updatedAt", type: "uint256" },
      { name: "answeredInRound", type: "uint80" },
    ],
  },
] as const;

export function chainlinkReader(chains: ReadonlyMap<number, ChainRuntime>): FeedReader {
  const decimals = new Map<string, number>();
  const chainOf = (chainId: number) => {
    const chain = chains.get(chainId);
    if (!chain) throw new Error(`chain ${chainId} is not served`);
    return chain;
  };
  return {
    async read(chainId, feed) {
      const chain = chainOf(chainId);
      const address = feed.address as Address;
      const key = `${chainId}:${address.toLowerCase()}`;
      const [round, places] = await Promise.all([
        chain.client.readContract({ address, abi: aggregatorV3Abi, functionName: "latestRoundData" }),
        decimals.get(key) ?? chain.client.readContract({ address, abi: aggregatorV3Abi, functionName: "decimals" }),
      ]);
      decimals.set(key, places);
      const [roundId, answer, startedAt, updatedAt, answeredInRound] = round;
      return { roundId, answer, startedAt, updatedAt, answeredInRound, decimals: places };
    },
    now: (chainId) => chainNow(chains.get(chainId)),
    block: (chainId) => chainOf(chainId).headBlock(),
  };
}
