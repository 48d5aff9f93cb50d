/**
 * Shared machinery for the property-based (fast-check) model tests of BillingEscrow and SubscriptionManager.
 *
 * - Every transaction is sent with an explicit gas limit (no estimateGas), a zero gas price (the base fee is
 *   pinned to zero), and an explicit block timestamp of `clock.now + 1`. So ETH balances move only by value
 *   transfers, reverted transactions are mined like successful ones, and the model knows the exact
 *   `block.timestamp` of every transaction it predicts.
 * - Views are read with raw `eth_call`s on pre-encoded calldata: the checks after every step read a few hundred
 *   words, and ethers' per-call overhead would dominate the run time.
 * - Replay: FC_SEED=<seed> [FC_PATH=<path>] reruns a reported counterexample; FC_RUNS overrides the run count.
 *   Under `hardhat coverage` the runs drop to a third and the seed is fixed (reproducible coverage figures).
 */
import hre from "hardhat";
import { time, setNextBlockBaseFeePerGas } from "@nomicfoundation/hardhat-network-helpers";
import type { Interface } from "ethers";
import type fc from "fast-check";

/** Gas limit 8M (instrumented coverage builds use several times the normal gas), zero fees. */
export const TX = { gasLimit: 8_000_000n, maxFeePerGas: 0n, maxPriorityFeePerGas: 0n } as const;

/** True under `hardhat coverage` (solidity-coverage sets this on the runtime environment). */
export const UNDER_COVERAGE = Boolean((hre as unknown as { __SOLIDITY_COVERAGE_RUNNING?: boolean }).__SOLIDITY_COVERAGE_RUNNING);

/** fast-check parameters: `runs` by default (a third under coverage), overridable from the environment. */
export function fcParams<T>(runs: number): fc.Parameters<T> {
  const params: fc.Parameters<T> = {
    numRuns: Number(process.env.FC_RUNS ?? (UNDER_COVERAGE ? Math.max(3, Math.ceil(runs / 3)) : runs)),
  };
  // Under coverage the seed is pinned, so the coverage report is reproducible for a given tree; plain test runs
  // draw a new seed every time (fast-check prints it with any failure).
  if (UNDER_COVERAGE) params.seed = 20_251_125;
  if (process.env.FC_SEED) params.seed = Number(process.env.FC_SEED);
  if (process.env.FC_PATH) params.path = process.env.FC_PATH;
  return params;
}

function provider() {
  return hre.network.provider;
}

/** Raw `eth_call` at the latest block. */
export async function rawCall(to: string, data: string): Promise<string> {
  return (await provider().request({ method: "eth_call", params: [{ to, data }, "latest"] })) as string;
}

/** Raw `eth_call` returning the first word as an unsigned integer. */
export async function callUint(to: string, data: string): Promise<bigint> {
  const ret = await rawCall(to, data);
  return BigInt(ret.slice(0, 66));
}

/** Splits ABI return data into 32-byte words as bigints. */
export function words(ret: string): bigint[] {
  const out: bigint[] = [];
  for (let i = 2; i + 64 <= ret.length; i += 64) out.push(BigInt("0x" + ret.slice(i, i + 64)));
  return out;
}

export async function ethBalance(address: string): Promise<bigint> {
  return BigInt((await provider().request({ method: "eth_getBalance", params: [address, "latest"] })) as string);
}

const BALANCE_OF = "0x70a08231";
/** `balanceOf(address)` calldata. */
export function balanceOfData(account: string): string {
  return BALANCE_OF + account.toLowerCase().replace(/^0x/, "").padStart(64, "0");
}

/** The chain's clock as the model sees it: the timestamp of the latest block. */
export class Clock {
  now = 0;
  async sync(): Promise<number> {
    this.now = await time.latest();
    return this.now;
  }
  /** Jumps `seconds` ahead with one block (evm_setNextBlockTimestamp + one mined block). */
  async increase(seconds: number): Promise<void> {
    if (seconds <= 0) return;
    await time.increase(seconds);
    await this.sync();
  }
}

/** Pins the base fee at zero: every later block keeps it at zero (blocks stay far below the gas target). */
export async function zeroFees(): Promise<void> {
  await setNextBlockBaseFeePerGas(0);
  // Mine one block so the pin takes effect regardless of what the next transaction is.
  await time.increase(1);
}

export interface DecodedError {
  name: string;
  args: unknown[];
}

export type Outcome =
  | { ok: true; T: number; logs: readonly { address: string; topics: readonly string[]; data: string }[] }
  | { ok: false; T: number; error: DecodedError | null; raw: unknown; mined: boolean };

function revertData(e: unknown): string | undefined {
  const seen = new Set<unknown>();
  const stack: unknown[] = [e];
  while (stack.length) {
    const x = stack.pop();
    if (x === null || typeof x !== "object" || seen.has(x)) continue;
    seen.add(x);
    const data = (x as { data?: unknown }).data;
    if (typeof data === "string" && /^0x[0-9a-fA-F]*$/.test(data)) return data;
    for (const k of ["error", "info", "cause", "data"]) stack.push((x as Record<string, unknown>)[k]);
  }
  return undefined;
}

/** Decodes revert data against the given ABIs; null when it is not a known custom error (panic, empty, string). */
export function decodeError(e: unknown, ifaces: Interface[]): DecodedError | null {
  const data = revertData(e);
  if (!data || data.length < 10) return null;
  for (const iface of ifaces) {
    try {
      const parsed = iface.parseError(data);
      if (parsed && parsed.name !== "Error" && parsed.name !== "Panic") {
        return { name: parsed.name, args: [...parsed.args] };
      }
    } catch {
      /* try the next ABI */
    }
  }
  return null;
}

/**
 * Sends one transaction in its own block at `clock.now + 1` and reports the outcome. A revert is caught (the
 * transaction is still mined, at that timestamp) and decoded against `ifaces`.
 */
export async function sendAt(
  clock: Clock,
  ifaces: Interface[],
  send: () => Promise<{ wait(): Promise<unknown> }>,
): Promise<Outcome> {
  const T = clock.now + 1;
  await time.setNextBlockTimestamp(T);
  try {
    const tx = await send();
    const receipt = (await tx.wait()) as { logs: Outcome extends { logs: infer L } ? L : never } | null;
    clock.now = T;
    return { ok: true, T, logs: receipt?.logs ?? [] };
  } catch (e) {
    const latest = await clock.sync();
    return { ok: false, T, error: decodeError(e, ifaces), raw: e, mined: latest === T };
  }
}

/** Short error description for traces. */
export function describeOutcome(out: Outcome): string {
  if (out.ok) return "ok";
  if (out.error) return `revert ${out.error.name}`;
  const msg = out.raw instanceof Error ? out.raw.message : String(out.raw);
  return `revert <not a custom error: ${msg.slice(0, 160)}>`;
}

/** Deterministic JSON for bigint-bearing values (for diffs in failure messages). */
export function show(x: unknown): string {
  return JSON.stringify(x, (_k, v) => (typeof v === "bigint" ? v.toString() : v));
}

/** Paths at which two plain values differ, as `path: chain X != model Y` lines. */
export function mismatches(chain: unknown, model: unknown, path = ""): string[] {
  if (chain !== null && model !== null && typeof chain === "object" && typeof model === "object") {
    const keys = new Set([...Object.keys(chain), ...Object.keys(model)]);
    return [...keys].flatMap((k) =>
      mismatches((chain as Record<string, unknown>)[k], (model as Record<string, unknown>)[k], path ? `${path}.${k}` : k),
    );
  }
  return show(chain) === show(model) ? [] : [`${path || "value"}: chain ${show(chain)} != model ${show(model)}`];
}

/** An assertion failure carrying the step trace that led to it. */
export class PropertyViolation extends Error {
  constructor(message: string, trace: string[]) {
    super(`${message}\n--- step trace (${trace.length} steps) ---\n${trace.join("\n")}`);
    this.name = "PropertyViolation";
  }
}

/** fast-check helper: a weighted `oneof` entry. */
export function w<T>(weight: number, arbitrary: fc.Arbitrary<T>): fc.WeightedArbitrary<T> {
  return { weight, arbitrary };
}

/** A transaction the model plans, with the custom errors it predicts (none: it must succeed). */
export interface TxPlanBase {
  desc: string;
  errs: string[];
  send: () => Promise<{ wait(): Promise<unknown> }>;
  apply: () => void;
}

export type StepPlan<P extends TxPlanBase> = P | { desc: string; time: number };

export type TxLogs = readonly { address: string; topics: readonly string[]; data: string }[];

/** What a model provides so `runStep` can drive one step against the chain and check it. */
export interface SteppedModel<O, P extends TxPlanBase> {
  readonly clock: Clock;
  readonly trace: string[];
  readonly ifaces: Interface[];
  observe(): Promise<O>;
  /** Accounts for money that moved between two observations (`plan` is set when a transaction succeeded). */
  flows(before: O, after: O, plan: P | undefined): void;
  /** The invariants, on one observation. */
  check(obs: O): void;
  fail(message: string): never;
  /** The part of `after` that a reverted transaction must leave equal to `before` (default: all of it). */
  unchangedByRevert?(after: O, before: O): O;
  /** Extra checks or records on a successful transaction, after the model applied it. */
  onSuccess?(plan: P, before: O, logs: TxLogs): void;
}

/**
 * One step of a model-based property: a time jump, or a transaction sent at the model's next timestamp. A
 * transaction the model predicts to revert must revert with one of the predicted custom errors and change
 * nothing; one it predicts to succeed must succeed, then the model applies it. Either way the money flows
 * and the invariants are checked on a fresh observation, which is returned as the model's new `last`.
 */
export async function runStep<O, P extends TxPlanBase>(model: SteppedModel<O, P>, last: O, plan: StepPlan<P>): Promise<O> {
  const index = model.trace.length + 1;
  if ("time" in plan) {
    await model.clock.increase(plan.time);
    model.trace.push(`${index}. ${plan.desc} -> now ${model.clock.now}`);
    const obs = await model.observe();
    model.flows(last, obs, undefined);
    model.check(obs);
    return obs;
  }
  const out: Outcome = await sendAt(model.clock, model.ifaces, plan.send);
  model.trace.push(
    `${index}. @${out.T} ${plan.desc} -> ${describeOutcome(out)}${plan.errs.length ? ` (model: revert ${plan.errs.join("|")})` : " (model: ok)"}`,
  );
  const after = await model.observe();
  if (plan.errs.length > 0) {
    if (out.ok) model.fail(`expected a revert (${plan.errs.join("|")}) but the transaction succeeded`);
    if (!out.error) model.fail(`reverted without a custom error: ${describeOutcome(out)}`);
    if (!plan.errs.includes(out.error.name)) model.fail(`reverted with ${out.error.name}, expected one of ${plan.errs.join("|")}`);
    const differences = mismatches(model.unchangedByRevert ? model.unchangedByRevert(after, last) : after, last);
    if (differences.length > 0) model.fail(`a reverted action changed state (chain = after, model = before):\n  ${differences.join("\n  ")}`);
  } else {
    if (!out.ok) model.fail(`expected success but: ${describeOutcome(out)}`);
    plan.apply();
    model.onSuccess?.(plan, last, out.logs);
  }
  model.flows(last, after, out.ok ? plan : undefined);
  model.check(after);
  return after;
}

/** Memoises encoded calldata by a label, so each observation re-encodes nothing (observations run every step). */
export class CalldataCache {
  private readonly encoded = new Map<string, string>();

  get(key: string, make: () => string): string {
    let data = this.encoded.get(key);
    if (data === undefined) this.encoded.set(key, (data = make()));
    return data;
  }
}
