/**
 * Tokens, for every resource: the registry of each chain (ETH, Circle's USDC on public test networks, the mock
 * stablecoin of local deployments), `resolveCurrency` for a request's `currency` ("ETH", a registry symbol such
 * as "USDC", or an ERC-20 address), and `tokenAt` for displaying an indexed token address.
 *
 * An address outside the registry is read on-chain (`decimals()`, `symbol()`) once and cached; addresses that
 * are not ERC-20 tokens are refused with a field error (and that answer is cached briefly, since a contract can
 * later be deployed at an address).
 */
import {
  BaseError,
  erc20Abi,
  getAddress,
  hexToString,
  HttpRequestError,
  isAddress,
  TimeoutError,
  zeroAddress,
  type Address,
} from "viem";
import type { Deployment } from "../contracts/addresses";
import type { ChainRuntime } from "./chains";
import { problem, ProblemError } from "./problems";

export interface TokenInfo {
  symbol: string;
  address: Address;
  decimals: number;
}

export const NATIVE_TOKEN: TokenInfo = { symbol: "ETH", address: zeroAddress, decimals: 18 };

/** Stablecoins known per public test network (Circle's USDC). */
const KNOWN_TOKENS: Record<number, TokenInfo[]> = {
  11155111: [{ symbol: "USDC", address: "0x1c7D4B196Cb0C7B01d743Fbc6116a902379C7238", decimals: 6 }],
  84532: [{ symbol: "USDC", address: "0x036CbD53842c5426634e7929541eC2318f3dCF7e", decimals: 6 }],
};

/** The token registry of a chain: ETH, the known stablecoins, and the mock stablecoin of a local deployment. */
export function tokenRegistry(chainId: number, deployment: Deployment): TokenInfo[] {
  const tokens: TokenInfo[] = [NATIVE_TOKEN, ...(KNOWN_TOKENS[chainId] ?? [])];
  const mock = deployment.contracts.MockStablecoin;
  if (mock) tokens.push({ symbol: "USDC", address: mock.address, decimals: 6 });
  return tokens;
}

/** Finds a token of the registry by symbol (case-insensitive) or address. */
export function findToken(chain: ChainRuntime, currency: string): TokenInfo | undefined {
  const wanted = currency.toLowerCase();
  return chain.tokens.find((token) => token.symbol.toLowerCase() === wanted || token.address.toLowerCase() === wanted);
}

export function isNative(token: TokenInfo): boolean {
  return token.address === zeroAddress;
}

const NEGATIVE_TTL_MS = 60_000;
const MAX_CACHED = 10_000;

const bytes32SymbolAbi = [
  { type: "function", name: "symbol", stateMutability: "view", inputs: [], outputs: [{ name: "", type: "bytes32" }] },
] as const;

/** A token read on-chain, or why the address is not one (kept briefly). Held by the chain runtime. */
export type CachedToken = { token: TokenInfo } | { error: string; until: number };

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
    const cache = chain.caches.tokens;
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

/** The token at `address` on `chain`, for display. A token that cannot be read shows base units (decimals 0). */
export async function tokenAt(chain: ChainRuntime, address: string): Promise<TokenInfo> {
  const checksummed = getAddress(address);
  try {
    return await resolveCurrency(chain, checksummed);
  } catch {
    return { symbol: checksummed, address: checksummed, decimals: 0 };
  }
}
