/**
 * Resolves an invoice's `currency`: "ETH", a symbol from the chain's token registry (e.g. "USDC"), or an
 * ERC-20 token address. An address outside the registry is read on-chain (`decimals()`, `symbol()`) once and
 * cached; addresses that are not ERC-20 tokens are refused with a field error (and that answer is cached
 * briefly, since a contract can later be deployed at an address).
 */
import {
  BaseError,
  erc20Abi,
  getAddress,
  hexToString,
  HttpRequestError,
  isAddress,
  TimeoutError,
  type Address,
} from "viem";
import { findToken, type ChainRuntime, type TokenInfo } from "../chains";
import { problem, ProblemError } from "../problems";

const NEGATIVE_TTL_MS = 60_000;
const MAX_CACHED = 10_000;

const bytes32SymbolAbi = [
  { type: "function", name: "symbol", stateMutability: "view", inputs: [], outputs: [{ name: "", type: "bytes32" }] },
] as const;

type Cached = { token: TokenInfo } | { error: string; until: number };

const caches = new WeakMap<ChainRuntime, Map<string, Cached>>();

function cacheOf(chain: ChainRuntime): Map<string, Cached> {
  let cache = caches.get(chain);
  if (!cache) {
    cache = new Map();
    caches.set(chain, cache);
  }
  return cache;
}

function currencyError(message: string): ProblemError {
  return problem.validation([{ field: "currency", message }]);
}

function isTransportFailure(error: unknown): boolean {
  if (!(error instanceof BaseError)) return false;
  return error.walk((cause) => cause instanceof HttpRequestError || cause instanceof TimeoutError) != null;
}

async function readSymbol(chain: ChainRuntime, address: Address): Promise<string> {
  try {
    const symbol = await chain.client.readContract({ address, abi: erc20Abi, functionName: "symbol" });
    if (symbol) return symbol.slice(0, 32);
  } catch (error) {
    if (isTransportFailure(error)) throw error;
  }
  try {
    // Some early tokens (MKR, SAI) return bytes32.
    const raw = await chain.client.readContract({ address, abi: bytes32SymbolAbi, functionName: "symbol" });
    const symbol = hexToString(raw, { size: 32 }).replace(/\0+$/, "");
    if (symbol) return symbol.slice(0, 32);
  } catch (error) {
    if (isTransportFailure(error)) throw error;
  }
  return "ERC20";
}

async function readToken(chain: ChainRuntime, address: Address): Promise<TokenInfo | { error: string }> {
  const code = await chain.client.getCode({ address });
  if (!code || code === "0x") {
    return { error: `is not a token: there is no contract at ${address} on chain ${chain.id}` };
  }
  let decimals: number;
  try {
    decimals = await chain.client.readContract({ address, abi: erc20Abi, functionName: "decimals" });
  } catch (error) {
    if (isTransportFailure(error)) throw error;
    return { error: `is not an ERC-20 token: the contract at ${address} on chain ${chain.id} has no decimals()` };
  }
  try {
    await chain.client.readContract({ address, abi: erc20Abi, functionName: "balanceOf", args: [address] });
  } catch (error) {
    if (isTransportFailure(error)) throw error;
    return { error: `is not an ERC-20 token: the contract at ${address} on chain ${chain.id} has no balanceOf()` };
  }
  if (decimals > 36) return { error: `has ${decimals} decimals; at most 36 are supported` };
  return { symbol: await readSymbol(chain, address), address, decimals };
}

/** The token `currency` names on `chain`, or a 422 problem on the `currency` field. */
export async function resolveCurrency(chain: ChainRuntime, currency: string): Promise<TokenInfo> {
  const text = currency.trim();
  if (/^0x[0-9a-fA-F]{40}$/.test(text)) {
    if (!isAddress(text, { strict: true })) {
      throw currencyError("has an invalid EIP-55 checksum (send the address all lowercase or correctly checksummed)");
    }
    const address = getAddress(text);
    const known = findToken(chain, address);
    if (known) return known;
    const cache = cacheOf(chain);
    const cached = cache.get(address);
    if (cached && "token" in cached) return cached.token;
    if (cached && cached.until > Date.now()) throw currencyError(cached.error);
    let result: TokenInfo | { error: string };
    try {
      result = await readToken(chain, address);
    } catch (error) {
      throw problem.unavailable(
        `Could not read the token ${address} on chain ${chain.id}: ${error instanceof BaseError ? error.shortMessage : String(error)}`,
      );
    }
    if (cache.size > MAX_CACHED) cache.clear();
    if ("error" in result) {
      cache.set(address, { error: result.error, until: Date.now() + NEGATIVE_TTL_MS });
      throw currencyError(result.error);
    }
    cache.set(address, { token: result });
    return result;
  }
  if (text.startsWith("0x")) throw currencyError("is not a valid address (expected 0x followed by 40 hex digits)");
  const token = /^[A-Za-z0-9.]{1,16}$/.test(text) ? findToken(chain, text) : undefined;
  if (!token) {
    const symbols = [...new Set(chain.tokens.map((candidate) => candidate.symbol))].join(", ");
    throw currencyError(`is not a currency known on chain ${chain.id}: use one of ${symbols}, or an ERC-20 token address`);
  }
  return token;
}
