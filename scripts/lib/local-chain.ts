/**
 * Local chains (Hardhat node): the public test accounts, the mock stablecoin, and time travel that Ponder can
 * follow. Used by `npm start` and `npm run demo`; never point these helpers at a real network.
 */
import {
  createWalletClient,
  http,
  parseAbi,
  toHex,
  type Account,
  type Address,
  type Chain,
  type Transport,
  type Hex,
  type HDAccount,
  type PublicClient,
  type WalletClient,
} from "viem";
import { mnemonicToAccount } from "viem/accounts";
import { isLocalChain } from "../../contracts/chains";

/** Hardhat's default mnemonic: its accounts are public knowledge, funded with 10,000 ETH on every local node. */
export const HARDHAT_MNEMONIC = "test test test test test test test test test test test junk";

export { isLocalChain };

/** Hardhat test account `index` (#0 deploys, #1 owns the demo merchant, #2… are customers). */
export function testAccount(index: number): HDAccount {
  return mnemonicToAccount(HARDHAT_MNEMONIC, { addressIndex: index });
}

export function testAccountKey(index: number): Hex {
  return toHex(testAccount(index).getHdKey().privateKey ?? new Uint8Array());
}

/** A wallet client with its account bound, so every call is signed by that account. */
export type Wallet = WalletClient<Transport, Chain | undefined, Account>;

export function walletFor(account: Account, rpcUrl: string): Wallet {
  return createWalletClient({ account, transport: http(rpcUrl, { retryCount: 0 }) });
}

/** The MockStablecoin deployed on local chains: a plain ERC-20 with EIP-2612 permit and open minting. */
export const mockStablecoinAbi = parseAbi([
  "function mint(address to, uint256 amount)",
  "function balanceOf(address owner) view returns (uint256)",
  "function decimals() view returns (uint8)",
  "function symbol() view returns (string)",
]);

/** Mints `token` so that `holder` owns at least `target` (a top-up, so re-runs do not pile up balances). */
export async function topUpStablecoin(
  client: PublicClient,
  wallet: Wallet,
  token: Address,
  holder: Address,
  target: bigint,
): Promise<bigint> {
  const balance = await client.readContract({ address: token, abi: mockStablecoinAbi, functionName: "balanceOf", args: [holder] });
  if (balance >= target) return balance;
  const hash = await wallet.writeContract({ address: token, abi: mockStablecoinAbi, functionName: "mint", args: [holder, target - balance], chain: null });
  await client.waitForTransactionReceipt({ hash });
  return target;
}

/**
 * Moves the chain's clock forward by `seconds` and mines exactly one block carrying the new time. One block
 * only: mining several at once (hardhat_mine N) creates blocks Ponder cannot follow, and it stops indexing.
 */
export async function timeTravel(client: PublicClient, seconds: number): Promise<bigint> {
  await client.request({ method: "evm_increaseTime" as never, params: [seconds] as never });
  await client.request({ method: "evm_mine" as never, params: [] as never });
  return (await client.getBlock({ blockTag: "latest" })).timestamp;
}
