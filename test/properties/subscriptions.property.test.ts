/**
 * Model-based property test of SubscriptionManager: random sequences of plan creation and repricing,
 * subscriptions (with and without trials), batch renewals, cancels, plan changes, max-price changes, merchant
 * withdrawals, claims, allowance revocations, token blocklisting, a fee-on-transfer switch and time jumps of
 * random length, replayed against an exact model of the contract. The model follows the billing rules exactly:
 * one trial per wallet and plan, a plan change only while the period runs and never to the same plan (earned part
 * rounded up; during a trial, at most the new plan's trial), renewals anchored unless past due or past grace,
 * grace strictly shorter than the period.
 *
 * After every step, per token (USDC, a blocklisting USDC-like token BUSD, a fee-on-transfer token FOT):
 *  - solvency:     token.balanceOf(subscriptions) == Σ unearned + Σ merchantBalance + Σ claimable
 *  - conservation: Σ received by anyone (measured at the receivers) <= Σ paid in, no subscriber got back more
 *                  than it paid; the contract balance is exactly in − out for tokens without a transfer fee
 *  - cancel:       the refund is never more than the subscription's unearned charge before the cancel
 *  - the chain equals the model (balances, claimables, merchant balances, every plan and subscription).
 * An action the model says is invalid must revert with a custom error from the expected set and change nothing.
 *
 * Most actions are drawn blindly (and are often invalid, which is tested too); the `advance` action instead
 * picks a move that is valid in the current state (renew what is due, cancel, change plan, make the next
 * renewal fail), so that sequences of at most 30 steps reach renewals, grace periods and lapses.
 *
 * Replay a failure with FC_SEED=<seed> FC_PATH=<path> (both printed by fast-check, with the step trace of the
 * shrunk counterexample). FC_RUNS=<n> changes the number of runs; PROPERTY_TRACE=1 prints every run's trace.
 */
import { expect } from "chai";
import fc from "fast-check";
import { ethers } from "hardhat";
import { loadFixture, takeSnapshot, type SnapshotRestorer } from "@nomicfoundation/hardhat-network-helpers";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/signers";
import type { Interface, Wallet } from "ethers";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { deployFixture, registerMerchant } from "../helpers/fixture";
import {
  balanceOfData,
  CalldataCache,
  callUint,
  Clock,
  fcParams,
  mismatches,
  PropertyViolation,
  rawCall,
  show,
  w,
  words,
  zeroFees,
  TX,
  runStep,
} from "./harness";

// ------------------------------------------------------------------------------------------------ constants

const TOKENS = ["USDC", "BUSD", "FOT"] as const;
type Tok = (typeof TOKENS)[number];
const STATUS = ["None", "Trialing", "Active", "PastDue", "Canceled", "Lapsed"] as const;
const S = { None: 0, Trialing: 1, Active: 2, PastDue: 3, Canceled: 4, Lapsed: 5 } as const;
const DAY = 86_400;
const MAX_PERIOD = 5 * 365 * DAY;
const MAX_TRIAL = 365 * DAY;
const MAX_BATCH = 250;
const MAX_UINT = 2n ** 256n - 1n;
const MAX_U96 = 2n ** 96n - 1n;

// ------------------------------------------------------------------------------------------------ world

async function subscriptionsWorld() {
  const f = await deployFixture();
  const signers = await ethers.getSigners();
  const [merchant2Owner, stranger, claimTo, payout2, sub3] = [signers[8], signers[10], signers[11], signers[12], signers[13]];
  const subsAddr = await f.subscriptions.getAddress();

  const busd = await ethers.deployContract("BlocklistToken");
  const fot = await ethers.deployContract("FeeOnTransferToken", [0]);
  // Merchant 2's signer key also sends transactions (the signer is a merchant operator, like the owner).
  const signer2Key = generatePrivateKey();
  const signer2Wallet = new ethers.Wallet(signer2Key, ethers.provider);
  await f.owner.sendTransaction({ to: signer2Wallet.address, value: ethers.parseEther("10") });
  await registerMerchant(f.escrow, merchant2Owner, payout2.address, privateKeyToAccount(signer2Key));

  await f.usdc.mint(sub3.address, 10n ** 15n);
  await f.usdc.connect(sub3).approve(subsAddr, ethers.MaxUint256);
  for (const account of [f.payer, f.other, sub3]) {
    for (const token of [busd, fot]) {
      await token.mint(account.address, 10n ** 15n);
      await token.connect(account).approve(subsAddr, ethers.MaxUint256);
    }
  }
  // Merchant 2's payout starts blocklisted in BUSD, so its BUSD withdrawals become claimable balances.
  await busd.setBlocklisted(payout2.address, true);
  return { ...f, busd, fot, merchant2Owner, signer2Wallet, stranger, claimTo, payout2, sub3 };
}
type World = Awaited<ReturnType<typeof subscriptionsWorld>>;

interface Actor {
  name: string;
  address: string;
  signer: HardhatEthersSigner | Wallet;
}

// ------------------------------------------------------------------------------------------------ actions

type PlanFault = "none" | "stranger" | "unknownMerchant" | "eoaToken" | "zeroPrice" | "zeroPeriod" | "longPeriod" | "longTrial" | "longGrace";
type MaxMode = "exact" | "above" | "below" | "max";
type Action =
  | { k: "createPlan"; merchant: 1 | 2; token: number; price: bigint; period: number; trial: number; grace: number; fault: PlanFault }
  | { k: "setPlanPrice"; plan: number; unknown: boolean; price: bigint; byOperator: boolean }
  | { k: "setPlanActive"; plan: number; active: boolean; byOperator: boolean }
  | { k: "subscribe"; plan: number; unknown: boolean; who: number; maxMode: MaxMode }
  | { k: "renew"; ids: number[]; preferDue: boolean; size: "normal" | "empty" | "oversize" | "allDue" }
  | { k: "cancel"; sub: number; unknown: boolean; by: "subscriber" | "merchant" | "stranger"; preferRunning: boolean }
  | { k: "changePlan"; sub: number; plan: number; compatible: boolean; maxMode: MaxMode; byStranger: boolean }
  | { k: "setMaxPrice"; sub: number; price: bigint; byStranger: boolean }
  | { k: "withdraw"; merchant: 1 | 2; token: number; ids: number[]; matching: boolean }
  | { k: "claim"; who: number; token: number; to: "self" | "claimTo" | "zero"; preferNonzero: boolean }
  | { k: "approve"; who: number; token: number; amount: "zero" | "small" | "max" }
  | { k: "blocklist"; who: number; on: boolean }
  | { k: "fotFee"; bps: number }
  | { k: "setPaused"; paused: boolean; byOwner: boolean }
  | { k: "time"; seconds: number }
  | { k: "timeTo"; sub: number; which: "periodEnd" | "graceEnd"; offset: -1 | 0 | 1 }
  | { k: "advance"; pick: number; choice: number };

const price = fc.oneof(w(1, fc.bigInt(1n, 100n)), w(4, fc.bigInt(101n, 10n ** 9n)));
const maxMode = fc.oneof(w(3, fc.constant<MaxMode>("exact")), w(3, fc.constant<MaxMode>("above")), w(1, fc.constant<MaxMode>("below")), w(2, fc.constant<MaxMode>("max")));
const periods = fc.oneof(fc.constantFrom(3_600, DAY, 7 * DAY, 30 * DAY), fc.integer({ min: 60, max: 40 * DAY }));
const ids = fc.array(fc.nat(1_000), { minLength: 1, maxLength: 5 });

const actionArb: fc.Arbitrary<Action> = fc.oneof(
  w(4, fc.record({
    k: fc.constant("createPlan" as const),
    merchant: fc.constantFrom<1 | 2>(1, 2),
    token: fc.nat(2),
    price,
    period: periods,
    trial: fc.oneof(w(4, fc.constant(0)), w(1, fc.constantFrom(3_600, DAY, 3 * DAY))),
    grace: fc.oneof(w(2, fc.constant(0)), w(2, fc.constant(50)), w(1, fc.constant(99))), // percent of the period (grace < period)
    fault: fc.oneof(
      w(24, fc.constant<PlanFault>("none")),
      ...(["stranger", "unknownMerchant", "eoaToken", "zeroPrice", "zeroPeriod", "longPeriod", "longTrial", "longGrace"] as const).map((x) => w(1, fc.constant<PlanFault>(x))),
    ),
  })),
  w(3, fc.record({ k: fc.constant("setPlanPrice" as const), plan: fc.nat(1_000), unknown: fc.oneof(w(10, fc.constant(false)), w(1, fc.constant(true))), price: fc.oneof(w(10, price), w(1, fc.constant(0n))), byOperator: fc.oneof(w(6, fc.constant(true)), w(1, fc.constant(false))) })),
  w(1, fc.record({ k: fc.constant("setPlanActive" as const), plan: fc.nat(1_000), active: fc.oneof(w(1, fc.constant(false)), w(2, fc.constant(true))), byOperator: fc.oneof(w(6, fc.constant(true)), w(1, fc.constant(false))) })),
  w(8, fc.record({ k: fc.constant("subscribe" as const), plan: fc.nat(1_000), unknown: fc.oneof(w(15, fc.constant(false)), w(1, fc.constant(true))), who: fc.nat(2), maxMode })),
  w(7, fc.record({ k: fc.constant("renew" as const), ids, preferDue: fc.oneof(w(4, fc.constant(true)), w(1, fc.constant(false))), size: fc.oneof(w(30, fc.constant<"normal">("normal")), w(1, fc.constant<"empty">("empty")), w(1, fc.constant<"oversize">("oversize"))) })),
  w(4, fc.record({ k: fc.constant("cancel" as const), sub: fc.nat(1_000), unknown: fc.oneof(w(15, fc.constant(false)), w(1, fc.constant(true))), by: fc.constantFrom<"subscriber" | "merchant" | "stranger">("subscriber", "subscriber", "subscriber", "merchant", "stranger"), preferRunning: fc.oneof(w(4, fc.constant(true)), w(1, fc.constant(false))) })),
  w(4, fc.record({ k: fc.constant("changePlan" as const), sub: fc.nat(1_000), plan: fc.nat(1_000), compatible: fc.oneof(w(5, fc.constant(true)), w(1, fc.constant(false))), maxMode, byStranger: fc.oneof(w(10, fc.constant(false)), w(1, fc.constant(true))) })),
  w(2, fc.record({ k: fc.constant("setMaxPrice" as const), sub: fc.nat(1_000), price: fc.oneof(price, fc.constant(0n), fc.constant(MAX_U96)), byStranger: fc.oneof(w(10, fc.constant(false)), w(1, fc.constant(true))) })),
  w(4, fc.record({ k: fc.constant("withdraw" as const), merchant: fc.constantFrom<1 | 2>(1, 2), token: fc.nat(2), ids: fc.array(fc.nat(1_000), { maxLength: 4 }), matching: fc.oneof(w(8, fc.constant(true)), w(1, fc.constant(false))) })),
  w(3, fc.record({ k: fc.constant("claim" as const), who: fc.nat(4), token: fc.nat(2), to: fc.constantFrom<"self" | "claimTo" | "zero">("self", "self", "claimTo", "zero"), preferNonzero: fc.oneof(w(4, fc.constant(true)), w(1, fc.constant(false))) })),
  w(3, fc.record({ k: fc.constant("approve" as const), who: fc.nat(2), token: fc.nat(2), amount: fc.constantFrom<"zero" | "small" | "max">("zero", "small", "max", "max") })),
  w(2, fc.record({ k: fc.constant("blocklist" as const), who: fc.nat(6), on: fc.oneof(w(2, fc.constant(true)), w(1, fc.constant(false))) })),
  w(1, fc.record({ k: fc.constant("fotFee" as const), bps: fc.constantFrom(0, 0, 1, 100, 10_000) })),
  w(1, fc.record({ k: fc.constant("setPaused" as const), paused: fc.oneof(w(1, fc.constant(true)), w(2, fc.constant(false))), byOwner: fc.oneof(w(6, fc.constant(true)), w(1, fc.constant(false))) })),
  w(5, fc.record({ k: fc.constant("time" as const), seconds: fc.oneof(fc.constantFrom(1, 60, 3_600, DAY, 7 * DAY, 30 * DAY), fc.integer({ min: 1, max: 45 * DAY })) })),
  w(4, fc.record({ k: fc.constant("timeTo" as const), sub: fc.nat(1_000), which: fc.constantFrom<"periodEnd" | "graceEnd">("periodEnd", "graceEnd"), offset: fc.constantFrom<-1 | 0 | 1>(-1, 0, 1) })),
  w(30, fc.record({ k: fc.constant("advance" as const), pick: fc.nat(1_000), choice: fc.nat(1_000) })),
);

// ------------------------------------------------------------------------------------------------ model
//
// For each transaction the model lists every check the call fails (`errs`), each evaluated on its own, so the
// prediction does not depend on the order of the contract's checks (gas work may reorder them): the call must
// succeed iff the list is empty, and otherwise revert with one of the listed custom errors.

interface PlanRec {
  id: number;
  tok: Tok;
  merchant: number;
  active: boolean;
  price: bigint;
  period: number;
  trial: number;
  grace: number;
}

interface SubRec {
  id: number;
  subscriber: Actor;
  planId: number;
  status: number;
  collectedUntil: number;
  unearned: bigint;
  maxPrice: bigint;
  periodEnd: number;
}

type PerTok = Record<Tok, bigint>;
const zero = (): PerTok => ({ USDC: 0n, BUSD: 0n, FOT: 0n });

interface Obs {
  bal: Record<string, PerTok>;
  claim: Record<string, PerTok>;
  merchantBalance: Record<number, PerTok>;
  plans: { token: string; merchantId: number; active: boolean; price: bigint; period: number; trial: number; grace: number }[];
  subs: { subscriber: string; planId: number; status: number; collectedUntil: number; unearned: bigint; maxPrice: bigint; periodEnd: number }[];
  counts: [number, number, boolean];
}

interface TxPlan {
  desc: string;
  errs: string[];
  send: () => Promise<{ wait(): Promise<unknown> }>;
  apply: () => void;
  claim?: { claimer: string; to: string };
  /** For a cancel: the subscription, and the refund the model expects. */
  cancel?: { id: number; refund: bigint };
}
type Plan = TxPlan | { desc: string; time: number } | null;

class SubscriptionsModel {
  readonly clock = new Clock();
  readonly trace: string[] = [];
  private readonly ifaces: Interface[];
  private readonly subsAddr: string;
  private readonly tokenAddr: Record<Tok, string>;
  private readonly actors: Record<string, Actor>;
  private readonly subscribers: Actor[];
  private readonly claimers: Actor[];
  private readonly blockTargets: { name: string; address: string }[];
  private readonly tracked: { name: string; address: string }[];
  private readonly byAddr = new Map<string, string>();

  private readonly plans: PlanRec[] = [];
  private readonly subs: SubRec[] = [];
  private bal: Record<string, PerTok> = {};
  private readonly claim: Record<string, PerTok> = {};
  private readonly merchantBalance: Record<number, PerTok> = { 1: zero(), 2: zero() };
  private readonly allowance: Record<string, PerTok> = {};
  private readonly blocked = new Set<string>();
  /** `${subscriber} ${planId}` for every plan trial a wallet has used (a wallet gets each plan's trial once). */
  private readonly trialsUsed = new Set<string>();
  private fotBps = 0n;
  private paused = false;

  private readonly paidIn: Record<string, PerTok> = {};
  private readonly outTo: Record<string, PerTok> = {};
  private readonly totalIn: PerTok = zero();
  private readonly totalOut: PerTok = zero();
  private start: PerTok = zero();
  private last!: Obs;
  stats = { cancelRefunds: 0, maxCancelRefundShare: 0, stepsWithClaimable: 0, renewCharged: 0, renewPastDue: 0, renewLapsed: 0, renewInexact: 0, renewNothingDelivered: 0, trialReused: 0, trialPlanChanges: 0 };

  constructor(
    private readonly w: World,
    addrs: Record<string, string>,
  ) {
    this.subsAddr = addrs.subscriptions;
    this.tokenAddr = { USDC: addrs.usdc, BUSD: addrs.busd, FOT: addrs.fot };
    this.ifaces = [w.subscriptions.interface, w.usdc.interface, w.busd.interface, w.fot.interface] as unknown as Interface[];
    const actor = (name: string, signer: HardhatEthersSigner): Actor => ({ name, address: signer.address, signer });
    this.actors = {
      payer: actor("payer", w.payer),
      other: actor("other", w.other),
      sub3: actor("sub3", w.sub3),
      payout: actor("payout", w.payout),
      payout2: actor("payout2", w.payout2),
      claimTo: actor("claimTo", w.claimTo),
      keeper: actor("keeper", w.keeper),
      stranger: actor("stranger", w.stranger),
      merchantOwner: actor("merchantOwner", w.merchantOwner),
      merchant2Owner: actor("merchant2Owner", w.merchant2Owner),
      signer2: { name: "signer2", address: w.signer2Wallet.address, signer: w.signer2Wallet },
      owner: actor("owner", w.owner),
    };
    const A = this.actors;
    this.subscribers = [A.payer, A.other, A.sub3];
    this.claimers = [A.payer, A.other, A.sub3, A.payout, A.payout2];
    const contract = { name: "subscriptions", address: addrs.subscriptions };
    this.blockTargets = [A.payer, A.other, A.sub3, A.payout, A.payout2, A.claimTo, contract];
    this.tracked = [contract, ...Object.values(A)];
    for (const t of this.tracked) {
      this.byAddr.set(t.address.toLowerCase(), t.name);
      this.claim[t.name] = zero();
      this.paidIn[t.name] = zero();
      this.outTo[t.name] = zero();
      this.allowance[t.name] = zero();
    }
    for (const s of this.subscribers) this.allowance[s.name] = { USDC: MAX_UINT, BUSD: MAX_UINT, FOT: MAX_UINT };
    this.blocked.add("payout2");
  }

  async init(): Promise<void> {
    await this.clock.sync();
    this.last = await this.observe();
    this.bal = structuredClone(this.last.bal);
    this.start = { ...this.last.bal.subscriptions };
    this.check(this.last);
  }

  // ---------------------------------------------------------------------------------------------- helpers

  private payoutOf(merchant: number): string {
    return merchant === 1 ? "payout" : "payout2";
  }

  private ownerOf(merchant: number): Actor {
    return merchant === 2 ? this.actors.merchant2Owner : this.actors.merchantOwner;
  }

  private isOperator(who: Actor, merchant: number): boolean {
    const A = this.actors;
    return (merchant === 1 && who === A.merchantOwner) || (merchant === 2 && (who === A.merchant2Owner || who === A.signer2));
  }

  /** An operator of the merchant: its owner, or for merchant 2 when `n` is odd its signer key. */
  private operatorOf(merchant: number, n: number | bigint): Actor {
    return merchant === 2 && BigInt(n) % 2n === 1n ? this.actors.signer2 : this.ownerOf(merchant);
  }

  private isBlocked(name: string): boolean {
    return this.blocked.has(name);
  }

  private running(status: number): boolean {
    return status === S.Trialing || status === S.Active || status === S.PastDue;
  }

  private fee(tok: Tok, amount: bigint): bigint {
    return tok === "FOT" ? (amount * this.fotBps) / 10_000n : 0n;
  }

  /** Whether a transfer of `tok` between the two (by name) goes through. */
  private transferable(tok: Tok, from: string, to: string): boolean {
    return tok !== "BUSD" || (!this.isBlocked(from) && !this.isBlocked(to));
  }

  /** Model of `_payOrCredit` from the contract. */
  private deliver(tok: Tok, to: string, amount: bigint): void {
    if (amount === 0n) return;
    if (this.transferable(tok, "subscriptions", to)) this.move(tok, "subscriptions", to, amount);
    else this.claim[to][tok] += amount;
  }

  /** A token transfer of `amount` (the receiver gets it minus the FOT fee, which is burnt). */
  private move(tok: Tok, from: string, to: string, amount: bigint): void {
    this.bal[from][tok] -= amount;
    this.bal[to][tok] += amount - this.fee(tok, amount);
  }

  private spend(who: string, tok: Tok, amount: bigint): void {
    if (this.allowance[who][tok] !== MAX_UINT) this.allowance[who][tok] -= amount;
  }

  /** Errors of `_pullExact(tok, who, amount)` in the current state. */
  private pullErrs(tok: Tok, who: string, amount: bigint): string[] {
    const errs: string[] = [];
    if (this.allowance[who][tok] < amount) errs.push("ERC20InsufficientAllowance");
    if (this.bal[who][tok] < amount) errs.push("ERC20InsufficientBalance");
    if (!this.transferable(tok, who, "subscriptions")) errs.push("Blocklisted");
    if (this.fee(tok, amount) !== 0n) errs.push("InexactTransfer");
    return errs;
  }

  private pull(tok: Tok, who: string, amount: bigint): void {
    if (amount === 0n) return;
    this.spend(who, tok, amount);
    this.move(tok, who, "subscriptions", amount);
  }

  private earned(sub: SubRec, T: number): bigint {
    if (sub.unearned === 0n || T <= sub.collectedUntil) return 0n;
    if (T >= sub.periodEnd) return sub.unearned;
    return (sub.unearned * BigInt(T - sub.collectedUntil)) / BigInt(sub.periodEnd - sub.collectedUntil);
  }

  /** Earned so far rounded up (a plan change); only while the period runs. */
  private earnedRoundedUp(sub: SubRec, T: number): bigint {
    if (sub.unearned === 0n || T <= sub.collectedUntil) return 0n;
    const length = BigInt(sub.periodEnd - sub.collectedUntil);
    return (sub.unearned * BigInt(T - sub.collectedUntil) + length - 1n) / length;
  }

  private planOf(sub: SubRec): PlanRec {
    return this.plans[sub.planId - 1];
  }

  private pickPlan(n: number, unknown: boolean, filter: (p: PlanRec) => boolean = () => true): number {
    if (unknown || this.plans.length === 0) return n % 2 === 0 ? 0 : this.plans.length + 1;
    const pool = this.plans.filter(filter);
    const from = pool.length > 0 ? pool : this.plans;
    return from[n % from.length].id;
  }

  private pickSub(n: number, unknown: boolean, filter: (s: SubRec) => boolean = () => true): number {
    if (unknown || this.subs.length === 0) return this.subs.length + 1;
    const pool = this.subs.filter(filter);
    const from = pool.length > 0 ? pool : this.subs;
    return from[n % from.length].id;
  }

  private maxFor(m: MaxMode, p: bigint): bigint {
    return m === "exact" ? p : m === "above" ? p + p / 2n : m === "below" ? p - 1n : MAX_U96;
  }

  private subLabel(id: number): string {
    const s = this.subs[id - 1];
    if (!s) return `sub${id}(unknown)`;
    const p = this.planOf(s);
    return `sub${id}[${s.subscriber.name} plan${s.planId} ${p.tok} ${STATUS[s.status]} unearned=${s.unearned} max=${s.maxPrice} collected=${s.collectedUntil} periodEnd=${s.periodEnd}]`;
  }

  private planLabel(id: number): string {
    const p = this.plans[id - 1];
    if (!p) return `plan${id}(unknown)`;
    return `plan${id}[m${p.merchant} ${p.tok} price=${p.price} period=${p.period} trial=${p.trial} grace=${p.grace}${p.active ? "" : " inactive"}]`;
  }

  private send(who: Actor, contract: { connect(s: HardhatEthersSigner | Wallet): unknown }, method: string, args: unknown[]) {
    const connected = contract.connect(who.signer) as Record<string, (...a: unknown[]) => Promise<{ wait(): Promise<unknown> }>>;
    return () => connected[method](...args, { ...TX });
  }

  // ---------------------------------------------------------------------------------------------- planning

  private plan(a: Action): Plan {
    const T = this.clock.now + 1;
    const A = this.actors;
    const subsC = this.w.subscriptions;
    switch (a.k) {
      case "createPlan": {
        const f = a.fault;
        const merchant = f === "unknownMerchant" ? 3 : a.merchant;
        const by = f === "stranger" ? A.stranger : this.operatorOf(merchant, a.price);
        const tok = TOKENS[a.token % 3];
        const tokenAddress = f === "eoaToken" ? A.stranger.address : this.tokenAddr[tok];
        const priceV = f === "zeroPrice" ? 0n : a.price;
        const period = f === "zeroPeriod" ? 0 : f === "longPeriod" ? MAX_PERIOD + 1 : a.period;
        const trial = f === "longTrial" ? MAX_TRIAL + 1 : a.trial;
        // "longGrace": a grace equal to the period, the first one refused (grace must be strictly shorter).
        const grace = f === "longGrace" ? period : Math.floor((period * a.grace) / 100);
        const errs: string[] = [];
        if (!this.isOperator(by, merchant)) errs.push("NotMerchantOperator");
        if (f === "eoaToken") errs.push("TokenNotContract");
        if (priceV === 0n) errs.push("ZeroAmount");
        if (period === 0 || period > MAX_PERIOD) errs.push("InvalidPeriod");
        if (trial > MAX_TRIAL) errs.push("TrialTooLong");
        if (grace >= period) errs.push("GracePeriodTooLong");
        return {
          desc: `createPlan m${merchant} ${f === "eoaToken" ? "EOA" : tok} price=${priceV} period=${period} trial=${trial} grace=${grace} by ${by.name}`,
          errs,
          send: this.send(by, subsC, "createPlan", [merchant, tokenAddress, priceV, period, trial, grace]),
          apply: () => {
            this.plans.push({ id: this.plans.length + 1, tok, merchant, active: true, price: priceV, period, trial, grace });
          },
        };
      }
      case "setPlanPrice":
      case "setPlanActive": {
        const id = this.pickPlan(a.plan, a.k === "setPlanPrice" && a.unknown);
        const p = this.plans[id - 1];
        const by = a.byOperator ? this.operatorOf(p?.merchant ?? 1, a.plan) : A.stranger;
        const errs: string[] = [];
        if (!p) errs.push("UnknownPlan");
        if (!this.isOperator(by, p?.merchant ?? 0)) errs.push("NotMerchantOperator");
        if (a.k === "setPlanPrice") {
          if (a.price === 0n) errs.push("ZeroAmount");
          return {
            desc: `setPlanPrice ${this.planLabel(id)} -> ${a.price} by ${by.name}`,
            errs,
            send: this.send(by, subsC, "setPlanPrice", [id, a.price]),
            apply: () => {
              p.price = a.price;
            },
          };
        }
        return {
          desc: `setPlanActive ${this.planLabel(id)} -> ${a.active} by ${by.name}`,
          errs,
          send: this.send(by, subsC, "setPlanActive", [id, a.active]),
          apply: () => {
            p.active = a.active;
          },
        };
      }
      case "subscribe": {
        const id = this.pickPlan(a.plan, a.unknown, (p) => p.active);
        const p = this.plans[id - 1];
        const who = this.subscribers[a.who % 3];
        const maxPrice = this.maxFor(a.maxMode, p?.price ?? 1n);
        const errs: string[] = [];
        // A wallet gets each plan's trial once: subscribing again to that plan starts charged.
        const trialing = p !== undefined && p.trial !== 0 && !this.trialsUsed.has(`${who.name} ${id}`);
        if (this.paused) errs.push("SubscriptionsPaused");
        if (!p) errs.push("UnknownPlan");
        else {
          if (!p.active) errs.push("PlanInactive");
          if (p.price > maxPrice) errs.push("PriceAboveMaximum");
          if (!trialing) errs.push(...this.pullErrs(p.tok, who.name, p.price));
        }
        // (An unknown plan has no price or token, so only UnknownPlan applies to it.)
        return {
          desc: `subscribe ${this.planLabel(id)} by ${who.name} max=${maxPrice}${p && p.trial !== 0 && !trialing ? " (trial used)" : ""}`,
          errs,
          send: this.send(who, subsC, "subscribe", [id, maxPrice]),
          apply: () => {
            if (trialing) this.trialsUsed.add(`${who.name} ${id}`);
            else if (p.trial !== 0) this.stats.trialReused += 1;
            this.subs.push({
              id: this.subs.length + 1,
              subscriber: who,
              planId: id,
              status: trialing ? S.Trialing : S.Active,
              collectedUntil: T,
              unearned: trialing ? 0n : p.price,
              maxPrice,
              periodEnd: T + (trialing ? p.trial : p.period),
            });
            if (!trialing) this.pull(p.tok, who.name, p.price);
          },
        };
      }
      case "renew": {
        const due = (s: SubRec) => this.running(s.status) && T >= s.periodEnd;
        let list = a.ids.map((n, i) => (a.preferDue || i > 0 ? this.pickSub(n, false, due) : this.pickSub(n, n % 7 === 0)));
        const allDue = this.subs.filter(due).map((x) => x.id);
        if (a.size === "allDue" && allDue.length > 0) list = allDue;
        if (a.size === "empty") list = [];
        if (a.size === "oversize") list = Array.from({ length: MAX_BATCH + 1 }, (_, i) => list[i % list.length]);
        const errs = list.length === 0 || list.length > MAX_BATCH ? ["InvalidBatchSize"] : [];
        return {
          desc: `renew [${list.length > 8 ? `${list.length} ids` : list.map((id) => this.subLabel(id)).join(", ")}] by keeper`,
          errs,
          send: this.send(A.keeper, subsC, "renew", [list]),
          apply: () => {
            for (const id of list) this.renewOne(id, T);
          },
        };
      }
      case "cancel": {
        const id = this.pickSub(a.sub, a.unknown, a.preferRunning ? (s) => this.running(s.status) : undefined);
        const s = this.subs[id - 1];
        const p = s && this.planOf(s);
        const by = a.by === "subscriber" ? (s?.subscriber ?? A.payer) : a.by === "merchant" ? this.operatorOf(p?.merchant ?? 1, a.sub) : A.stranger;
        const errs: string[] = [];
        if (!s) errs.push("UnknownSubscription");
        if (by !== s?.subscriber && !this.isOperator(by, p?.merchant ?? 0)) errs.push("NotSubscriberOrMerchant");
        if (!this.running(s?.status ?? S.None)) errs.push("InvalidSubscriptionStatus");
        const earned = s ? this.earned(s, T) : 0n;
        const refund = s ? s.unearned - earned : 0n;
        return {
          desc: `cancel ${this.subLabel(id)} by ${by.name} (model refund ${refund}, earned ${earned})`,
          errs,
          send: this.send(by, subsC, "cancel", [id]),
          cancel: { id, refund },
          apply: () => {
            this.merchantBalance[p.merchant][p.tok] += earned;
            s.status = S.Canceled;
            s.unearned = 0n;
            s.collectedUntil = T;
            this.deliver(p.tok, s.subscriber.name, refund);
          },
        };
      }
      case "changePlan": {
        const id = this.pickSub(a.sub, false, (s) => (s.status === S.Active || s.status === S.Trialing) && T < s.periodEnd);
        const s = this.subs[id - 1];
        const old = s && this.planOf(s);
        const newId = this.pickPlan(a.plan, false, a.compatible && old ? (p) => p.merchant === old.merchant && p.tok === old.tok && p.active && p.id !== old.id : undefined);
        const np = this.plans[newId - 1];
        const by = a.byStranger || !s ? A.stranger : s.subscriber;
        const newMax = this.maxFor(a.maxMode, np?.price ?? 1n);
        const errs: string[] = [];
        let earned = 0n;
        let charge = 0n;
        let excess = 0n;
        /** During a trial: where the trial now ends (0: it ends now and the new plan is charged). */
        let trialEnd = 0;
        if (!s) errs.push("UnknownSubscription");
        if (by !== s?.subscriber) errs.push("NotSubscriber");
        if (s?.status !== S.Trialing && s?.status !== S.Active) errs.push("InvalidSubscriptionStatus");
        else if (T >= s.periodEnd) errs.push("RenewalDue");
        if (s && newId === s.planId) errs.push("SamePlan");
        if (!np) errs.push("UnknownPlan");
        if (np && !np.active) errs.push("PlanInactive");
        if (np && (np.merchant !== old?.merchant || np.tok !== old?.tok)) errs.push("PlanMismatch");
        if (np && np.price > newMax) errs.push("PriceAboveMaximum");
        if (errs.length === 0 && s.status === S.Active) {
          // Rounded up: every started base unit of time is paid for.
          earned = this.earnedRoundedUp(s, T);
          const credit = s.unearned - earned;
          charge = np.price > credit ? np.price - credit : 0n;
          excess = credit > np.price ? credit - np.price : 0n;
          if (charge !== 0n) errs.push(...this.pullErrs(np.tok, s.subscriber.name, charge));
        } else if (errs.length === 0) {
          // The trial goes on only as far as the new plan's own trial allows (from the trial's start).
          if (np.trial !== 0) trialEnd = Math.min(s.collectedUntil + np.trial, s.periodEnd);
          if (T >= trialEnd) {
            trialEnd = 0;
            charge = np.price;
            errs.push(...this.pullErrs(np.tok, s.subscriber.name, charge));
          }
        }
        const model = s?.status === S.Active ? ` (model: earned ${earned}, charge ${charge}, excess ${excess})` : trialEnd ? ` (model: trial until ${trialEnd})` : ` (model: trial ends, charge ${charge})`;
        return {
          desc: `changePlan ${this.subLabel(id)} -> ${this.planLabel(newId)} max=${newMax} by ${by.name}${model}`,
          errs,
          send: this.send(by, subsC, "changePlan", [id, newId, newMax]),
          apply: () => {
            s.planId = newId;
            s.maxPrice = newMax;
            if (s.status === S.Trialing) {
              this.stats.trialPlanChanges += 1;
              if (np.trial !== 0) this.trialsUsed.add(`${s.subscriber.name} ${newId}`);
              if (trialEnd !== 0) {
                s.periodEnd = trialEnd;
                return;
              }
              Object.assign(s, { status: S.Active, collectedUntil: T, unearned: np.price, periodEnd: T + np.period });
              this.pull(np.tok, s.subscriber.name, charge);
              return;
            }
            this.merchantBalance[np.merchant][np.tok] += earned;
            s.unearned = np.price;
            s.collectedUntil = T;
            s.periodEnd = T + np.period;
            this.pull(np.tok, s.subscriber.name, charge);
            this.deliver(np.tok, s.subscriber.name, excess);
          },
        };
      }
      case "setMaxPrice": {
        const id = this.pickSub(a.sub, false, (s) => this.running(s.status));
        const s = this.subs[id - 1];
        const by = a.byStranger || !s ? A.stranger : s.subscriber;
        const errs: string[] = [];
        if (!s) errs.push("UnknownSubscription");
        if (by !== s?.subscriber) errs.push("NotSubscriber");
        if (!this.running(s?.status ?? S.None)) errs.push("InvalidSubscriptionStatus");
        return {
          desc: `setMaxPrice ${this.subLabel(id)} -> ${a.price} by ${by.name}`,
          errs,
          send: this.send(by, subsC, "setMaxPrice", [id, a.price]),
          apply: () => {
            s.maxPrice = a.price;
          },
        };
      }
      case "withdraw": {
        const tok = TOKENS[a.token % 3];
        const matches = (s: SubRec) => this.planOf(s).merchant === a.merchant && this.planOf(s).tok === tok;
        const list = a.ids.map((n) => this.pickSub(n, !a.matching && n % 2 === 0, a.matching ? matches : undefined));
        const errs: string[] = [];
        if (list.some((id) => !this.subs[id - 1] || !matches(this.subs[id - 1]))) errs.push("SubscriptionMismatch");
        // Simulate the collection on copies to know the total.
        let amount = this.merchantBalance[a.merchant][tok];
        const updates = new Map<number, { unearned: bigint; collectedUntil: number }>();
        if (errs.length === 0) {
          for (const id of list) {
            const s = { ...this.subs[id - 1], ...updates.get(id) };
            const e = this.earned(s, T);
            if (e === 0n) continue;
            amount += e;
            updates.set(id, { unearned: s.unearned - e, collectedUntil: T < s.periodEnd ? T : s.periodEnd });
          }
          if (amount === 0n) errs.push("NothingToWithdraw");
        }
        return {
          desc: `withdraw m${a.merchant} ${tok} [${list.map((id) => this.subLabel(id)).join(", ")}] by keeper (model total ${amount})`,
          errs,
          send: this.send(A.keeper, subsC, "withdraw", [a.merchant, this.tokenAddr[tok], list]),
          apply: () => {
            for (const [id, u] of updates) Object.assign(this.subs[id - 1], u);
            this.merchantBalance[a.merchant][tok] = 0n;
            this.deliver(tok, this.payoutOf(a.merchant), amount);
          },
        };
      }
      case "claim": {
        let claimer = this.claimers[a.who % this.claimers.length];
        let tok = TOKENS[a.token % 3];
        if (a.preferNonzero) {
          const options = this.claimers.flatMap((c) => TOKENS.filter((k) => this.claim[c.name][k] > 0n).map((k) => [c, k] as const));
          if (options.length > 0) [claimer, tok] = options[(a.who + a.token) % options.length];
        }
        const to = a.to === "self" ? claimer : a.to === "claimTo" ? A.claimTo : undefined;
        const amount = this.claim[claimer.name][tok];
        const errs: string[] = [];
        if (!to) errs.push("ZeroAddress");
        else if (!this.transferable(tok, "subscriptions", to.name)) errs.push("Blocklisted");
        if (amount === 0n) errs.push("NothingToClaim");
        return {
          desc: `claim ${tok} ${amount} by ${claimer.name} to ${to?.name ?? "0x0"}`,
          errs,
          send: this.send(claimer, subsC, "claim", [this.tokenAddr[tok], to?.address ?? ethers.ZeroAddress]),
          claim: { claimer: claimer.name, to: to?.name ?? "" },
          apply: () => {
            this.claim[claimer.name][tok] = 0n;
            this.move(tok, "subscriptions", to!.name, amount);
          },
        };
      }
      case "approve": {
        const who = this.subscribers[a.who % 3];
        const tok = TOKENS[a.token % 3];
        const amount = a.amount === "zero" ? 0n : a.amount === "small" ? 1_000_000n : MAX_UINT;
        const token = tok === "USDC" ? this.w.usdc : tok === "BUSD" ? this.w.busd : this.w.fot;
        return {
          desc: `${tok}.approve(subscriptions, ${a.amount}) by ${who.name}`,
          errs: [],
          send: this.send(who, token, "approve", [this.subsAddr, amount]),
          apply: () => {
            this.allowance[who.name][tok] = amount;
          },
        };
      }
      case "blocklist": {
        const who = this.blockTargets[a.who % this.blockTargets.length];
        return {
          desc: `BUSD.setBlocklisted ${who.name} ${a.on}`,
          errs: [],
          send: this.send(A.keeper, this.w.busd, "setBlocklisted", [who.address, a.on]),
          apply: () => {
            if (a.on) this.blocked.add(who.name);
            else this.blocked.delete(who.name);
          },
        };
      }
      case "fotFee":
        return {
          desc: `FOT.setFeeBps ${a.bps}`,
          errs: [],
          send: this.send(A.keeper, this.w.fot, "setFeeBps", [a.bps]),
          apply: () => {
            this.fotBps = BigInt(a.bps);
          },
        };
      case "setPaused": {
        const by = a.byOwner ? A.owner : A.stranger;
        return {
          desc: `setPaused ${a.paused} by ${by.name}`,
          errs: a.byOwner ? [] : ["OwnableUnauthorizedAccount"],
          send: this.send(by, subsC, "setPaused", [a.paused]),
          apply: () => {
            this.paused = a.paused;
          },
        };
      }
      case "time":
        return { desc: `time +${a.seconds}s`, time: a.seconds };
      case "timeTo": {
        const id = this.pickSub(a.sub, false, (s) => this.running(s.status) && s.periodEnd >= T);
        const s = this.subs[id - 1];
        if (!s || !this.running(s.status)) return null;
        const base = a.which === "periodEnd" ? s.periodEnd : s.periodEnd + this.planOf(s).grace;
        const jump = base + a.offset - 1 - this.clock.now;
        if (jump < 1) return null;
        return { desc: `time +${jump}s (next tx at ${a.which} of sub${id} ${a.offset >= 0 ? "+" : ""}${a.offset})`, time: jump };
      }
      case "advance":
        return this.advance(a);
    }
  }

  /** A valid next move from the current state. */
  private advance(a: Extract<Action, { k: "advance" }>): Plan {
    const T = this.clock.now + 1;
    const moves: Action[] = [];
    const active = this.plans.filter((p) => p.active);
    if (active.length === 0 || (this.plans.length < 4 && a.choice % 4 === 0)) {
      moves.push({ k: "createPlan", merchant: a.pick % 2 === 0 ? 1 : 2, token: a.choice % 3, price: BigInt(1 + ((a.pick * 7_919 + a.choice) % 1_000_000_000)), period: [3_600, DAY, 7 * DAY, 30 * DAY][a.choice % 4], trial: a.pick % 5 === 0 ? DAY : 0, grace: [0, 50, 99][a.pick % 3], fault: "none" });
    } else {
      moves.push({ k: "subscribe", plan: a.pick, unknown: false, who: a.choice, maxMode: a.choice % 3 === 0 ? "max" : "above" });
      const running = this.subs.filter((s) => this.running(s.status));
      if (running.length > 0) {
        const s = running[a.pick % running.length];
        const p = this.planOf(s);
        // Keepers renew what is due, most of the time.
        const dueNow = this.subs.filter((x) => this.running(x.status) && T >= x.periodEnd);
        if (dueNow.length > 0 && a.choice % 3 !== 0) {
          // Sometimes a fee-on-transfer token switches its fee on just before the keeper comes by.
          if (this.fotBps === 0n && a.choice % 3 === 1 && dueNow.some((x) => this.planOf(x).tok === "FOT")) {
            return this.plan({ k: "fotFee", bps: a.pick % 2 === 0 ? 10_000 : 100 });
          }
          return this.plan({ k: "renew", ids: [a.pick], preferDue: true, size: "allDue" });
        }
        moves.push({ k: "cancel", sub: a.pick, unknown: false, by: a.choice % 4 === 0 ? "merchant" : "subscriber", preferRunning: true });
        moves.push({ k: "withdraw", merchant: p.merchant as 1 | 2, token: TOKENS.indexOf(p.tok), ids: [a.pick, a.choice], matching: true });
        if ((s.status === S.Active || s.status === S.Trialing) && T < s.periodEnd) {
          // Change this very subscription (its index in the pool changePlan picks from) to another plan of the same
          // merchant and token; without one, create one first (sometimes with a trial).
          const pool = this.subs.filter((x) => (x.status === S.Active || x.status === S.Trialing) && T < x.periodEnd);
          if (this.plans.some((x) => x.active && x.id !== p.id && x.merchant === p.merchant && x.tok === p.tok)) {
            const change: Action = { k: "changePlan", sub: pool.indexOf(s), plan: a.choice, compatible: true, maxMode: "max", byStranger: false };
            moves.push(change, change);
          } else {
            const create: Action = { k: "createPlan", merchant: p.merchant as 1 | 2, token: TOKENS.indexOf(p.tok), price: p.price + BigInt(a.choice % 3) - 1n || 1n, period: [3_600, DAY, 7 * DAY, 30 * DAY][a.pick % 4], trial: a.choice % 3 === 0 ? [3_600, DAY][a.pick % 2] : 0, grace: 50, fault: "none" };
            moves.push(create, create);
          }
        }
        moves.push({ k: "timeTo", sub: a.pick, which: "periodEnd", offset: 0 }, { k: "timeTo", sub: a.pick, which: "periodEnd", offset: 1 });
        moves.push({ k: "timeTo", sub: a.pick, which: "graceEnd", offset: ([-1, 0, 1] as const)[a.choice % 3] });
        // Make the next renewal of this subscriber fail: revoke its allowance, blocklist it, or switch the FOT fee on.
        const who = this.subscribers.indexOf(s.subscriber);
        const disrupt: Action[] = [
          { k: "approve", who, token: TOKENS.indexOf(p.tok), amount: "zero" },
          { k: "setMaxPrice", sub: a.pick, price: 0n, byStranger: false },
          // A 100% fee delivers nothing at all: the renewal fails without a claimable credit.
          p.tok === "FOT" ? { k: "fotFee", bps: a.pick % 3 === 0 ? 10_000 : 100 } : { k: "blocklist", who, on: true },
        ];
        moves.push(disrupt[a.choice % disrupt.length], disrupt[(a.choice + 1) % disrupt.length]);
      }
    }
    if (this.claimers.some((c) => TOKENS.some((k) => this.claim[c.name][k] > 0n))) {
      moves.push({ k: "claim", who: a.pick, token: a.choice, to: a.choice % 2 === 0 ? "self" : "claimTo", preferNonzero: true });
    }
    return this.plan(moves[a.choice % moves.length]);
  }

  /** Model of `_renew` for one id. */
  private renewOne(id: number, T: number): void {
    const s = this.subs[id - 1];
    if (!s || !this.running(s.status)) return;
    const due = s.periodEnd;
    if (T < due) return;
    const p = this.planOf(s);
    if (s.unearned !== 0n) this.merchantBalance[p.merchant][p.tok] += s.unearned;
    const graceEnd = due + p.grace;
    // A past-due subscription, or one renewed from its grace end on, starts at the charge; else the anchor is kept.
    const start = s.status === S.PastDue || T >= graceEnd ? T : due;
    let charged = false;
    if (p.price <= s.maxPrice) {
      const name = s.subscriber.name;
      const pulled = this.allowance[name][p.tok] >= p.price && this.bal[name][p.tok] >= p.price && this.transferable(p.tok, name, "subscriptions");
      if (pulled) {
        this.pull(p.tok, name, p.price);
        const fee = this.fee(p.tok, p.price);
        if (fee === 0n) charged = true;
        else {
          this.stats.renewInexact += 1;
          if (p.price - fee !== 0n) this.claim[name][p.tok] += p.price - fee;
          else this.stats.renewNothingDelivered += 1;
        }
      }
    }
    if (charged) this.stats.renewCharged += 1;
    else if (T >= graceEnd) this.stats.renewLapsed += 1;
    else this.stats.renewPastDue += 1;
    if (charged) {
      Object.assign(s, { status: S.Active, collectedUntil: start, unearned: p.price, periodEnd: start + p.period });
    } else {
      Object.assign(s, { status: T >= graceEnd ? S.Lapsed : S.PastDue, unearned: 0n, collectedUntil: due });
    }
  }

  // ---------------------------------------------------------------------------------------------- stepping

  async step(a: Action): Promise<void> {
    const plan = this.plan(a);
    if (plan === null) return;
    this.last = await runStep(
      {
        clock: this.clock,
        trace: this.trace,
        ifaces: this.ifaces,
        observe: () => this.observe(),
        flows: (before, after, done) => this.flows(before, after, done),
        check: (obs) => this.check(obs),
        fail: (message) => this.fail(message),
        onSuccess: (done, before, logs) => {
          if (done.cancel) this.checkCancel(done.cancel, before, logs);
        },
      },
      this.last,
      plan,
    );
  }

  /** A cancel refunds at most the unearned charge, and exactly what the model expects. */
  private checkCancel(c: { id: number; refund: bigint }, before: Obs, logs: readonly { address: string; topics: readonly string[]; data: string }[]): void {
    const events = logs
      .filter((l) => l.address.toLowerCase() === this.subsAddr.toLowerCase())
      .map((l) => this.w.subscriptions.interface.parseLog({ topics: [...l.topics], data: l.data }))
      .filter((e) => e?.name === "SubscriptionCanceled");
    if (events.length !== 1) this.fail(`cancel emitted ${events.length} SubscriptionCanceled events`);
    const refunded = events[0]!.args.refunded as bigint;
    const unearned = before.subs[c.id - 1].unearned;
    if (refunded > unearned) this.fail(`cancel of sub${c.id} refunded ${refunded} > its unearned charge ${unearned}`);
    if (refunded !== c.refund) this.fail(`cancel of sub${c.id} refunded ${refunded}, model expects ${c.refund}`);
    this.stats.cancelRefunds += 1;
    if (unearned > 0n) this.stats.maxCancelRefundShare = Math.max(this.stats.maxCancelRefundShare, Number((refunded * 1000n) / unearned) / 1000);
  }

  private fail(message: string): never {
    throw new PropertyViolation(message, this.trace);
  }

  // ---------------------------------------------------------------------------------------------- observation

  private readonly calldata = new CalldataCache();

  private async observe(): Promise<Obs> {
    const i = this.w.subscriptions.interface;
    const bal: Record<string, PerTok> = {};
    const claim: Record<string, PerTok> = {};
    for (const t of this.tracked) {
      const b = zero();
      const c = zero();
      for (const tok of TOKENS) {
        b[tok] = await callUint(this.tokenAddr[tok], balanceOfData(t.address));
        c[tok] = await callUint(this.subsAddr, this.calldata.get(`claimable ${t.name} ${tok}`, () => i.encodeFunctionData("claimable", [t.address, this.tokenAddr[tok]])));
      }
      bal[t.name] = b;
      claim[t.name] = c;
    }
    const merchantBalance: Record<number, PerTok> = { 1: zero(), 2: zero() };
    for (const m of [1, 2]) {
      for (const tok of TOKENS) {
        merchantBalance[m][tok] = await callUint(this.subsAddr, this.calldata.get(`mb ${m} ${tok}`, () => i.encodeFunctionData("merchantBalance", [m, this.tokenAddr[tok]])));
      }
    }
    const counts: Obs["counts"] = [
      Number(await callUint(this.subsAddr, this.calldata.get("planCount", () => i.encodeFunctionData("planCount")))),
      Number(await callUint(this.subsAddr, this.calldata.get("subscriptionCount", () => i.encodeFunctionData("subscriptionCount")))),
      (await callUint(this.subsAddr, this.calldata.get("paused", () => i.encodeFunctionData("paused")))) !== 0n,
    ];
    // Every record the chain has, plus the next id (which must still be empty).
    const plans: Obs["plans"] = [];
    for (let id = 1; id <= counts[0] + 1; id++) {
      const x = words(await rawCall(this.subsAddr, this.calldata.get(`plan ${id}`, () => i.encodeFunctionData("plan", [id]))));
      plans.push({ token: "0x" + x[0].toString(16).padStart(40, "0"), merchantId: Number(x[1]), active: x[2] !== 0n, price: x[3], period: Number(x[4]), trial: Number(x[5]), grace: Number(x[6]) });
    }
    const subs: Obs["subs"] = [];
    for (let id = 1; id <= counts[1] + 1; id++) {
      const x = words(await rawCall(this.subsAddr, this.calldata.get(`sub ${id}`, () => i.encodeFunctionData("subscription", [id]))));
      subs.push({ subscriber: "0x" + x[0].toString(16).padStart(40, "0"), planId: Number(x[1]), status: Number(x[2]), collectedUntil: Number(x[3]), unearned: x[4], maxPrice: x[5], periodEnd: Number(x[6]) });
    }
    return { bal, claim, merchantBalance, plans, subs, counts };
  }

  /** Who paid into and got out of the contract in this step, measured at their own balances. */
  private flows(before: Obs, after: Obs, plan: TxPlan | undefined): void {
    for (const tok of TOKENS) {
      for (const t of this.tracked) {
        if (t.name === "subscriptions") continue;
        const delta = after.bal[t.name][tok] - before.bal[t.name][tok];
        if (delta === 0n) continue;
        if (delta < 0n) {
          if (!this.subscribers.some((s) => s.name === t.name)) this.fail(`${t.name} lost ${-delta} ${tok} though it never pays`);
          this.paidIn[t.name][tok] += -delta;
          this.totalIn[tok] += -delta;
        } else {
          const beneficiary = plan?.claim && plan.claim.to === t.name ? plan.claim.claimer : t.name;
          this.outTo[beneficiary][tok] += delta;
          this.totalOut[tok] += delta;
        }
      }
    }
  }

  // ---------------------------------------------------------------------------------------------- invariants

  private check(obs: Obs): void {
    if (this.tracked.some((t) => TOKENS.some((tok) => obs.claim[t.name][tok] > 0n))) this.stats.stepsWithClaimable += 1;
    for (const tok of TOKENS) {
      // Solvency, from the contract's own views.
      let unearned = 0n;
      obs.subs.forEach((s) => {
        const p = obs.plans[s.planId - 1];
        if (s.planId !== 0 && p.token.toLowerCase() === this.tokenAddr[tok].toLowerCase()) unearned += s.unearned;
      });
      const merchants = obs.merchantBalance[1][tok] + obs.merchantBalance[2][tok];
      let claimable = 0n;
      for (const t of this.tracked) claimable += obs.claim[t.name][tok];
      const balance = obs.bal.subscriptions[tok];
      if (balance !== unearned + merchants + claimable) {
        this.fail(`solvency broken for ${tok}: balance ${balance} != unearned ${unearned} + merchant balances ${merchants} + claimable ${claimable}`);
      }
      // Conservation, from the receivers' balances (a fee-on-transfer token burns part of what moves).
      if (this.totalOut[tok] > this.totalIn[tok]) this.fail(`${tok}: received out ${this.totalOut[tok]} > paid in ${this.totalIn[tok]}`);
      const expected = this.start[tok] + this.totalIn[tok] - this.totalOut[tok];
      if (tok === "FOT" ? balance > expected : balance !== expected) {
        this.fail(`${tok}: contract balance ${balance} vs start + in ${this.totalIn[tok]} - out ${this.totalOut[tok]} = ${expected}`);
      }
      for (const s of this.subscribers) {
        if (this.outTo[s.name][tok] > this.paidIn[s.name][tok]) this.fail(`${s.name} got back ${this.outTo[s.name][tok]} ${tok} but paid ${this.paidIn[s.name][tok]}`);
      }
      for (const t of this.tracked) {
        if (["payer", "other", "sub3", "payout", "payout2", "subscriptions"].includes(t.name)) continue;
        if (this.outTo[t.name][tok] !== 0n) this.fail(`${t.name} received ${this.outTo[t.name][tok]} ${tok} on its own account`);
      }
    }
    // The chain equals the model.
    const diff = (what: string, chain: unknown, model: unknown) => {
      const differences = mismatches(chain, model);
      if (differences.length > 0) this.fail(`${what} differ from the model:\n  ${differences.join("\n  ")}`);
    };
    diff("balances", obs.bal, this.bal);
    diff("claimable", obs.claim, this.claim);
    diff("merchant balances", obs.merchantBalance, this.merchantBalance);
    diff("counts", obs.counts, [this.plans.length, this.subs.length, this.paused]);
    diff(
      "plans",
      obs.plans,
      [...this.plans.map((p) => ({ token: this.tokenAddr[p.tok].toLowerCase(), merchantId: p.merchant, active: p.active, price: p.price, period: p.period, trial: p.trial, grace: p.grace })), { token: ethers.ZeroAddress, merchantId: 0, active: false, price: 0n, period: 0, trial: 0, grace: 0 }],
    );
    diff(
      "subscriptions",
      obs.subs.map((s) => ({ ...s, status: STATUS[s.status] })),
      [
        ...this.subs.map((s) => ({ subscriber: s.subscriber.address.toLowerCase(), planId: s.planId, status: STATUS[s.status], collectedUntil: s.collectedUntil, unearned: s.unearned, maxPrice: s.maxPrice, periodEnd: s.periodEnd })),
        { subscriber: ethers.ZeroAddress, planId: 0, status: "None", collectedUntil: 0, unearned: 0n, maxPrice: 0n, periodEnd: 0 },
      ],
    );
  }
}

// ------------------------------------------------------------------------------------------------ the property

describe("SubscriptionManager properties (fast-check, model-based)", function () {
  this.timeout(30 * 60_000); // a failure shrinks by replaying chain histories
  // Leave the chain as it was found (the zero base fee pinned here would otherwise leak into later files).
  let snapshot: SnapshotRestorer;
  before(async () => {
    snapshot = await takeSnapshot();
  });
  after(async () => {
    await snapshot.restore();
  });

  it("keeps every token solvent and conserved; cancel refunds never exceed the unearned charge", async () => {
    let runs = 0;
    let steps = 0;
    const stats = { cancelRefunds: 0, maxCancelRefundShare: 0, stepsWithClaimable: 0, renewCharged: 0, renewPastDue: 0, renewLapsed: 0, renewInexact: 0, renewNothingDelivered: 0, trialReused: 0, trialPlanChanges: 0 };
    const outcomes = new Map<string, number>();
    await fc.assert(
      fc.asyncProperty(fc.array(actionArb, { minLength: 1, maxLength: 30, size: "max" }), async (actions) => {
        const world = await loadFixture(subscriptionsWorld);
        await zeroFees();
        const addrs = {
          subscriptions: await world.subscriptions.getAddress(),
          usdc: await world.usdc.getAddress(),
          busd: await world.busd.getAddress(),
          fot: await world.fot.getAddress(),
        };
        const model = new SubscriptionsModel(world, addrs);
        await model.init();
        for (const action of actions) await model.step(action);
        if (process.env.PROPERTY_TRACE) console.log(model.trace.join("\n") + "\n----");
        runs += 1;
        steps += model.trace.length;
        for (const [k, v] of Object.entries(model.stats) as [keyof typeof stats, number][]) {
          stats[k] = k === "maxCancelRefundShare" ? Math.max(stats[k], v) : stats[k] + v;
        }
        for (const line of model.trace) {
          const m = / -> (ok|revert \w+)/.exec(line);
          const kind = line.replace(/^\d+\. (@\d+ )?/, "").split(" ")[0];
          const key = `${kind} ${m ? m[1] : "time"}`;
          outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
        }
      }),
      fcParams(150),
    );
    console.log(`      ${runs} runs, ${steps} steps; ${show(stats)}; outcomes: ${[...outcomes].sort().map(([k, v]) => `${k}=${v}`).join(", ")}`);
    expect(runs).to.be.greaterThan(0);
  });
});
