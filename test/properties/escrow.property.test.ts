/**
 * Model-based property test of BillingEscrow: random sequences of payments (ETH, USDC, a blocklisting USDC-like
 * token), releases, refunds, disputes, arbiter rulings, claims, fee changes and time jumps, replayed against an
 * exact model of the contract.
 *
 * After every step, per token (ETH, USDC, BUSD):
 *  - solvency:     escrow balance == Σ heldAmount(invoice) + Σ claimable(account) + accruedFees
 *  - conservation: Σ paid out of the escrow (measured at the receivers) <= Σ paid in, the escrow balance is
 *                  exactly in − out, no payer got back more than it paid, no merchant more than its invoices
 *  - per invoice:  refunded + released + fee <= amount, and refunded + released + fee + held == amount
 *  - the chain equals the model (balances, claimables, fees, every payment record, held and refunded amounts).
 * An action the model says is invalid must revert with a custom error from the expected set and change nothing.
 *
 * Most actions are drawn blindly (and are often invalid, which is tested too); the `advance` action instead
 * picks a move that is valid in the current state, so that sequences of at most 30 steps reach deep states
 * (disputes resolved by the arbiter, expired disputes, deferred payouts claimed).
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
import { keccak256, toHex, zeroAddress, type Address, type Hex } from "viem";
import { generatePrivateKey, privateKeyToAccount, type LocalAccount } from "viem/accounts";
import { deployFixture, registerMerchant } from "../helpers/fixture";
import { buildInvoice, invoiceKey, signInvoice, type Invoice } from "../../contracts/invoice";
import {
  balanceOfData,
  CalldataCache,
  callUint,
  Clock,
  ethBalance,
  fcParams,
  PropertyViolation,
  rawCall,
  mismatches,
  w,
  words,
  zeroFees,
  TX,
  runStep,
} from "./harness";

// ------------------------------------------------------------------------------------------------ constants

const TOKENS = ["ETH", "USDC", "BUSD"] as const;
type Tok = (typeof TOKENS)[number];
const STATUS = ["None", "Held", "Disputed", "Released", "Refunded", "Voided"] as const;
const S = { None: 0, Held: 1, Disputed: 2, Released: 3, Refunded: 4, Voided: 5 } as const;
const BPS = 10_000n;
const MAX_FEE_BPS = 1_000;
const MAX_HOLD = 365 * 86_400;
const DAY = 86_400;

// ------------------------------------------------------------------------------------------------ world

async function escrowWorld() {
  const f = await deployFixture();
  const signers = await ethers.getSigners();
  const [merchant2Owner, rrOperator, stranger, claimTo] = [signers[8], signers[9], signers[10], signers[11]];
  const escrowAddr = await f.escrow.getAddress();

  const busd = await ethers.deployContract("BlocklistToken");
  const rrPayer = await ethers.deployContract("RevertingReceiver"); // a payer contract that refuses ETH
  const rrPayout = await ethers.deployContract("RevertingReceiver"); // merchant 2's payout, refuses ETH
  // Merchant 2's signer key also sends transactions (the signer is a merchant operator, like the owner).
  const signer2Key = generatePrivateKey();
  const signer2: LocalAccount = privateKeyToAccount(signer2Key);
  const signer2Wallet = new ethers.Wallet(signer2Key, ethers.provider);
  await f.owner.sendTransaction({ to: signer2.address, value: ethers.parseEther("10") });
  const wrongSigner: LocalAccount = privateKeyToAccount(generatePrivateKey());
  await registerMerchant(f.escrow, merchant2Owner, await rrPayout.getAddress(), signer2);

  for (const account of [f.payer, f.other]) {
    await busd.mint(account.address, 10n ** 15n);
    await busd.connect(account).approve(escrowAddr, ethers.MaxUint256);
  }
  const rrAddr = await rrPayer.getAddress();
  await f.usdc.mint(rrAddr, 10n ** 15n);
  await busd.mint(rrAddr, 10n ** 15n);
  for (const token of [f.usdc, busd]) {
    const approve = token.interface.encodeFunctionData("approve", [escrowAddr, ethers.MaxUint256]);
    await rrPayer.connect(rrOperator).execute(await token.getAddress(), approve);
  }
  return { ...f, busd, rrPayer, rrPayout, signer2, signer2Wallet, wrongSigner, merchant2Owner, rrOperator, stranger, claimTo };
}
type World = Awaited<ReturnType<typeof escrowWorld>>;

interface Actor {
  name: string;
  address: string;
  /** Sends its own transactions; otherwise a RevertingReceiver acting through `execute`. */
  eoa?: HardhatEthersSigner | Wallet;
  contract?: boolean;
}

// ------------------------------------------------------------------------------------------------ actions

type Target = { pick: number; live: boolean };
/** At most one deliberate defect per payment, so most payments are valid and sequences reach deep states. */
type Fault = "none" | "merchant99" | "eoaToken" | "zeroAmount" | "wrongPayer" | "holdTooLong" | "fulfillPast" | "expired" | "badSig" | "wrongValue";
type PayAction = {
  k: "pay";
  reuse: boolean;
  pick: number;
  merchant: 1 | 2;
  token: Tok;
  amount: bigint;
  from: number;
  payerField: "any" | "self";
  arbiter: boolean;
  hold: number;
  fulfill: "none" | "now" | "soon" | "later";
  expiry: "ok" | "justOk" | "short";
  /** The signed fee cap: the rate in force, any rate (MAX_FEE_BPS), or a random rate (often below the fee). */
  maxFee: "current" | "any" | number;
  fault: Fault;
};
type Action =
  | PayAction
  | { k: "void"; fresh: boolean; pick: number; merchant: 1 | 2; byOperator: boolean }
  | ({ k: "release"; by: "keeper" | "payer" | "merchant" } & Target)
  | ({ k: "refund"; mode: Mode; frac: number; by: "operator" | "stranger" | "cross" } & Target)
  | ({ k: "dispute"; byPayer: boolean } & Target)
  | ({ k: "withdrawDispute"; byPayer: boolean } & Target)
  | ({ k: "resolve"; mode: Mode; frac: number; byArbiter: boolean } & Target)
  | ({ k: "refundUnfulfilled" } & Target)
  | ({ k: "refundExpiredDispute" } & Target)
  | ({ k: "markFulfilled"; byOperator: boolean } & Target)
  | { k: "claim"; who: number; token: number; to: "self" | "claimTo" | "contract" | "zero"; preferNonzero: boolean }
  | { k: "withdrawFees"; token: number }
  | { k: "setFee"; bps: number; byOwner: boolean }
  | { k: "setPaused"; paused: boolean }
  | { k: "blocklist"; who: number; on: boolean }
  | { k: "time"; seconds: number }
  | ({ k: "timeTo"; which: "release" | "deadline" | "fulfill"; offset: -1 | 0 | 1 } & Target)
  /** A valid next move for a live invoice (or a claim), chosen at run time from the current state. */
  | { k: "advance"; pick: number; choice: number; mode: Mode; frac: number };
type Mode = "full" | "partial" | "over" | "zero";

const target = { pick: fc.nat(1_000), live: fc.oneof(w(4, fc.constant(true)), w(1, fc.constant(false))) };
const mode = fc.oneof(
  w(3, fc.constant<Mode>("full")),
  w(4, fc.constant<Mode>("partial")),
  w(1, fc.constant<Mode>("over")),
  w(1, fc.constant<Mode>("zero")),
);
const frac = fc.integer({ min: 1, max: 9_999 });

const payArb: fc.Arbitrary<Action> = fc.record({
  k: fc.constant("pay" as const),
  reuse: fc.oneof(w(8, fc.constant(false)), w(1, fc.constant(true))),
  pick: fc.nat(1_000),
  merchant: fc.constantFrom<1 | 2>(1, 2),
  token: fc.constantFrom<Tok>("ETH", "ETH", "USDC", "BUSD"),
  amount: fc.oneof(w(1, fc.bigInt(1n, 100n)), w(3, fc.bigInt(101n, 10n ** 9n))),
  from: fc.oneof(w(3, fc.constant(0)), w(2, fc.constant(1)), w(4, fc.constant(2)), w(1, fc.constant(3))),
  payerField: fc.constantFrom<"any" | "self">("any", "self"),
  arbiter: fc.oneof(w(3, fc.constant(true)), w(1, fc.constant(false))),
  hold: fc.oneof(
    w(1, fc.constant(0)),
    w(1, fc.constant(1)),
    w(2, fc.constant(3_600)),
    w(6, fc.constant(3 * DAY)),
    w(1, fc.constant(30 * DAY)),
    w(1, fc.constant(MAX_HOLD)),
  ),
  fulfill: fc.oneof(
    w(4, fc.constant<"none">("none")),
    w(1, fc.constant<"now">("now")),
    w(2, fc.constant<"soon">("soon")),
    w(2, fc.constant<"later">("later")),
  ),
  expiry: fc.oneof(w(8, fc.constant<"ok">("ok")), w(1, fc.constant<"justOk">("justOk")), w(1, fc.constant<"short">("short"))),
  maxFee: fc.oneof(w(4, fc.constant<"current">("current")), w(3, fc.constant<"any">("any")), w(1, fc.nat(MAX_FEE_BPS))),
  fault: fc.oneof(
    w(27, fc.constant<Fault>("none")),
    ...(["merchant99", "eoaToken", "zeroAmount", "wrongPayer", "holdTooLong", "fulfillPast", "expired", "badSig", "wrongValue"] as const).map(
      (f) => w(1, fc.constant<Fault>(f)),
    ),
  ),
});

const actionArb: fc.Arbitrary<Action> = fc.oneof(
  w(11, payArb),
  w(2, fc.record({ k: fc.constant("void" as const), fresh: fc.boolean(), pick: fc.nat(1_000), merchant: fc.constantFrom<1 | 2>(1, 2), byOperator: fc.oneof(w(3, fc.constant(true)), w(1, fc.constant(false))) })),
  w(8, fc.record({ k: fc.constant("release" as const), ...target, by: fc.constantFrom<"keeper" | "payer" | "merchant">("keeper", "keeper", "payer", "merchant") })),
  w(8, fc.record({ k: fc.constant("refund" as const), ...target, mode, frac, by: fc.oneof(w(6, fc.constant<"operator">("operator")), w(1, fc.constant<"stranger">("stranger")), w(1, fc.constant<"cross">("cross"))) })),
  w(10, fc.record({ k: fc.constant("dispute" as const), ...target, byPayer: fc.oneof(w(5, fc.constant(true)), w(1, fc.constant(false))) })),
  w(5, fc.record({ k: fc.constant("withdrawDispute" as const), ...target, byPayer: fc.oneof(w(5, fc.constant(true)), w(1, fc.constant(false))) })),
  w(8, fc.record({ k: fc.constant("resolve" as const), ...target, mode, frac, byArbiter: fc.oneof(w(6, fc.constant(true)), w(1, fc.constant(false))) })),
  w(4, fc.record({ k: fc.constant("refundUnfulfilled" as const), ...target })),
  w(5, fc.record({ k: fc.constant("refundExpiredDispute" as const), ...target })),
  w(6, fc.record({ k: fc.constant("markFulfilled" as const), ...target, byOperator: fc.oneof(w(6, fc.constant(true)), w(1, fc.constant(false))) })),
  w(6, fc.record({ k: fc.constant("claim" as const), who: fc.nat(4), token: fc.nat(2), to: fc.constantFrom<"self" | "claimTo" | "contract" | "zero">("self", "claimTo", "claimTo", "contract", "zero"), preferNonzero: fc.oneof(w(4, fc.constant(true)), w(1, fc.constant(false))) })),
  w(3, fc.record({ k: fc.constant("withdrawFees" as const), token: fc.nat(2) })),
  w(2, fc.record({ k: fc.constant("setFee" as const), bps: fc.oneof(w(1, fc.constant(0)), w(1, fc.constant(MAX_FEE_BPS)), w(1, fc.constant(MAX_FEE_BPS + 1)), w(3, fc.nat(MAX_FEE_BPS))), byOwner: fc.oneof(w(6, fc.constant(true)), w(1, fc.constant(false))) })),
  w(1, fc.record({ k: fc.constant("setPaused" as const), paused: fc.oneof(w(1, fc.constant(true)), w(2, fc.constant(false))) })),
  w(3, fc.record({ k: fc.constant("blocklist" as const), who: fc.nat(7), on: fc.oneof(w(2, fc.constant(true)), w(1, fc.constant(false))) })),
  w(6, fc.record({ k: fc.constant("time" as const), seconds: fc.oneof(fc.constantFrom(1, 60, 3_600, DAY, 3 * DAY, 7 * DAY, 8 * DAY), fc.integer({ min: 1, max: 12 * DAY })) })),
  w(16, fc.record({ k: fc.constant("advance" as const), pick: fc.nat(1_000), choice: fc.nat(1_000), mode, frac })),
  w(6, fc.record({ k: fc.constant("timeTo" as const), ...target, which: fc.constantFrom<"release" | "deadline" | "fulfill">("release", "deadline", "fulfill"), offset: fc.constantFrom<-1 | 0 | 1>(-1, 0, 1) })),
);

// ------------------------------------------------------------------------------------------------ model
//
// For each transaction the model lists every check the call fails (`errs`), each evaluated on its own, so the
// prediction does not depend on the order of the contract's checks (gas work may reorder them): the call must
// succeed iff the list is empty, and otherwise revert with one of the listed custom errors.

interface Rec {
  n: number;
  terms: Invoice;
  sig: Hex;
  /** Signed by the merchant's registered signer (not by a stranger's key). */
  validSig: boolean;
  key: Hex;
  tok: Tok | "EOA";
  // model
  status: number;
  payer?: Actor;
  releaseAt: number;
  feeBps: number;
  fulfilled: boolean;
  /** The payer opened its one dispute (kept after a withdrawal: a payment is disputed at most once). */
  disputeOpened: boolean;
  refunded: bigint;
  released: bigint;
  fee: bigint;
  // observed through events
  evRefunded: bigint;
  evReleased: bigint;
  evFee: bigint;
  // cached calldata
  cdPayment: string;
  cdHeld: string;
  cdRefunded: string;
}

type PerTok = Record<Tok, bigint>;
const zero = (): PerTok => ({ ETH: 0n, USDC: 0n, BUSD: 0n });

interface Obs {
  bal: Record<string, PerTok>;
  claim: Record<string, PerTok>;
  fees: PerTok;
  feeBps: number;
  paused: boolean;
  inv: { payer: string; releaseAt: number; status: number; feeBps: number; fulfilled: boolean; disputeOpened: boolean; held: bigint; refunded: bigint }[];
}

interface TxPlan {
  desc: string;
  errs: string[];
  send: () => Promise<{ wait(): Promise<unknown> }>;
  apply: () => void;
  /** For a claim: the claimant, to whom the receiver's inflow is attributed. */
  claim?: { claimer: string; to: string };
  /** For a payment: who paid what (the funds' source is `source`). */
  payIn?: { payer: string; source: string; tok: Tok; amount: bigint; merchant: number };
}
type Plan = TxPlan | { desc: string; time: number } | null;

class EscrowModel {
  readonly clock = new Clock();
  readonly trace: string[] = [];
  private readonly ifaces: Interface[];
  private readonly escrowAddr: string;
  private readonly tokenAddr: Record<Tok, string>;
  private readonly actors: Record<string, Actor>;
  private readonly payers: Actor[];
  private readonly claimers: Actor[];
  private readonly blockTargets: Actor[];
  private readonly tracked: Actor[];
  private readonly byAddr = new Map<string, Actor>();
  private readonly disputePeriod: number;
  private counter = 0;

  // model state
  private readonly recs: Rec[] = [];
  private bal: Record<string, PerTok> = {};
  private readonly claim: Record<string, PerTok> = {};
  private readonly fees: PerTok = zero();
  private feeBps = 0;
  private paused = false;
  private readonly blocked = new Set<string>();
  // flows observed at the receivers
  private readonly totalIn: PerTok = zero();
  private readonly totalOut: PerTok = zero();
  private readonly paidIn: Record<string, PerTok> = {};
  private readonly outTo: Record<string, PerTok> = {};
  private readonly merchantIn: Record<number, PerTok> = { 1: zero(), 2: zero() };
  private escrowStart: PerTok = zero();
  private last!: Obs;
  /** Steps after which some account had a claimable balance (the deferred-payout path is exercised). */
  stepsWithClaimable = 0;

  constructor(
    private readonly w: World,
    addrs: Record<string, string>,
    disputePeriod: number,
    feeBps: number,
  ) {
    this.escrowAddr = addrs.escrow;
    this.tokenAddr = { ETH: zeroAddress, USDC: addrs.usdc, BUSD: addrs.busd };
    this.disputePeriod = disputePeriod;
    this.feeBps = feeBps;
    this.ifaces = [w.escrow.interface, w.usdc.interface, w.busd.interface, w.rrPayer.interface] as unknown as Interface[];
    const eoa = (name: string, s: HardhatEthersSigner): Actor => ({ name, address: s.address, eoa: s });
    const contract = (name: string, address: string): Actor => ({ name, address, contract: true });
    this.actors = {
      escrow: contract("escrow", addrs.escrow),
      payer: eoa("payer", w.payer),
      other: eoa("other", w.other),
      rrPayer: contract("rrPayer", addrs.rrPayer),
      stranger: eoa("stranger", w.stranger),
      payout: eoa("payout", w.payout),
      rrPayout: contract("rrPayout", addrs.rrPayout),
      feeRecipient: eoa("feeRecipient", w.feeRecipient),
      claimTo: eoa("claimTo", w.claimTo),
      rrOperator: eoa("rrOperator", w.rrOperator),
      keeper: eoa("keeper", w.keeper),
      merchantOwner: eoa("merchantOwner", w.merchantOwner),
      merchant2Owner: eoa("merchant2Owner", w.merchant2Owner),
      signer2: { name: "signer2", address: w.signer2Wallet.address, eoa: w.signer2Wallet },
      arbiter: eoa("arbiter", w.arbiter),
      owner: eoa("owner", w.owner),
    };
    const a = this.actors;
    this.payers = [a.payer, a.other, a.rrPayer, a.stranger];
    this.claimers = [a.payer, a.other, a.rrPayer, a.payout, a.rrPayout];
    this.blockTargets = [a.payer, a.other, a.rrPayer, a.payout, a.rrPayout, a.feeRecipient, a.claimTo, a.escrow];
    this.tracked = Object.values(a);
    for (const actor of this.tracked) {
      this.byAddr.set(actor.address.toLowerCase(), actor);
      this.claim[actor.name] = zero();
      this.paidIn[actor.name] = zero();
      this.outTo[actor.name] = zero();
    }
  }

  async init(): Promise<void> {
    await this.clock.sync();
    this.last = await this.observe();
    this.bal = structuredClone(this.last.bal);
    this.escrowStart = { ...this.last.bal.escrow };
    this.check(this.last);
  }

  // ---------------------------------------------------------------------------------------------- helpers

  private payoutOf(merchant: number): Actor {
    return merchant === 1 ? this.actors.payout : this.actors.rrPayout;
  }

  /** An operator of the merchant: its owner, or for merchant 2 on odd-numbered invoices its signer key. */
  private operatorOf(merchant: number, rec: Rec): Actor {
    return merchant === 2 && rec.n % 2 === 1 ? this.actors.signer2 : this.ownerOf(merchant);
  }

  private ownerOf(merchant: number): Actor {
    return merchant === 2 ? this.actors.merchant2Owner : this.actors.merchantOwner;
  }

  private isOperator(who: Actor, merchant: number): boolean {
    if (merchant === 1) return who.address === this.w.merchantOwner.address || who.address === this.w.signer.address;
    if (merchant === 2) return who.address === this.w.merchant2Owner.address || who.address === this.w.signer2.address;
    return false;
  }

  private isBlocked(address: string): boolean {
    return this.blocked.has(address.toLowerCase());
  }

  private isContract(address: string): boolean {
    return this.byAddr.get(address.toLowerCase())?.contract === true;
  }

  /** Whether a payout of `tok` from the escrow to `to` is delivered (else it becomes claimable). */
  private canReceive(tok: Tok, to: string): boolean {
    if (tok === "ETH") return !this.isContract(to);
    if (tok === "BUSD") return !this.isBlocked(this.escrowAddr) && !this.isBlocked(to);
    return true;
  }

  private strictSendErrs(tok: Tok, to: string): string[] {
    if (this.canReceive(tok, to)) return [];
    return tok === "ETH" ? ["NativeTransferFailed"] : ["Blocklisted"];
  }

  private name(address: string): string {
    const actor = this.byAddr.get(address.toLowerCase());
    if (!actor) throw new Error(`untracked address ${address}`);
    return actor.name;
  }

  /** Model of `_payOrCredit`. */
  private deliver(tok: Tok, to: string, amount: bigint): void {
    if (amount === 0n) return;
    const name = this.name(to);
    if (this.canReceive(tok, to)) {
      this.bal[name][tok] += amount;
      this.bal.escrow[tok] -= amount;
    } else {
      this.claim[name][tok] += amount;
    }
  }

  private held(rec: Rec): bigint {
    return rec.status === S.Held || rec.status === S.Disputed ? rec.terms.amount - rec.refunded : 0n;
  }

  private isLive(rec: Rec): boolean {
    return rec.status === S.Held || rec.status === S.Disputed;
  }

  /** Picks an invoice: with `t.live`, preferably one in a state where the action can succeed. */
  private forced: Rec | undefined;
  private pickRec(t: Target, relevant: (r: Rec) => boolean = (r) => this.isLive(r)): Rec | undefined {
    if (this.forced) return this.forced;
    if (this.recs.length === 0) return undefined;
    const preferred = this.recs.filter(relevant);
    const pool = t.live && preferred.length > 0 ? preferred : this.recs;
    return pool[t.pick % pool.length];
  }

  private async newRec(terms: Invoice, signer: LocalAccount, tok: Tok | "EOA", validSig = true): Promise<Rec> {
    const sig = await signInvoice(signer, this.w.domain, terms);
    const key = invoiceKey(this.w.domain, terms);
    const e = this.w.escrow.interface;
    const rec: Rec = {
      n: this.recs.length,
      terms,
      sig,
      validSig,
      key,
      tok,
      status: S.None,
      releaseAt: 0,
      feeBps: 0,
      fulfilled: false,
      disputeOpened: false,
      refunded: 0n,
      released: 0n,
      fee: 0n,
      evRefunded: 0n,
      evReleased: 0n,
      evFee: 0n,
      cdPayment: e.encodeFunctionData("payment", [key]),
      cdHeld: e.encodeFunctionData("heldAmount", [terms]),
      cdRefunded: e.encodeFunctionData("refundedAmount", [terms]),
    };
    this.recs.push(rec);
    return rec;
  }

  private baseTerms(merchant: number, T: number): Invoice {
    this.counter += 1;
    return buildInvoice({
      merchantId: BigInt(merchant),
      invoiceId: keccak256(toHex(`property-invoice-${this.counter}`)),
      token: this.tokenAddr.USDC as Address,
      amount: 1_000_000n,
      expiresAt: BigInt(T + DAY),
      holdDuration: 3 * DAY,
      maxFeeBps: MAX_FEE_BPS,
    });
  }

  private recLabel(rec: Rec): string {
    const t = rec.terms;
    return (
      `inv${rec.n}[${rec.tok} ${t.amount} m${t.merchantId} status=${STATUS[rec.status]}` +
      `${t.arbiter === zeroAddress ? "" : " arb"}${t.fulfillBy === 0n ? "" : ` fulfillBy=${t.fulfillBy}`}` +
      ` hold=${t.holdDuration} maxFee=${t.maxFeeBps}${rec.status === S.None ? "" : ` releaseAt=${rec.releaseAt}`}]`
    );
  }

  /** Sends `method(args)` to `contract` as `actor` (a RevertingReceiver acts through `execute`). */
  private call(actor: Actor, contract: { getAddress(): Promise<string>; interface: unknown; connect(s: HardhatEthersSigner | Wallet): unknown }, method: string, args: unknown[], value = 0n) {
    if (actor.eoa) {
      const connected = contract.connect(actor.eoa) as Record<string, (...a: unknown[]) => Promise<{ wait(): Promise<unknown> }>>;
      return connected[method](...args, { ...TX, value });
    }
    const rr = actor.address === this.actors.rrPayer.address ? this.w.rrPayer : this.w.rrPayout;
    return (async () => {
      const data = (contract.interface as Interface).encodeFunctionData(method, args);
      return rr.connect(this.w.rrOperator).execute(await contract.getAddress(), data, { ...TX, value });
    })();
  }

  // ---------------------------------------------------------------------------------------------- planning

  private async plan(a: Action): Promise<Plan> {
    const T = this.clock.now + 1;
    const A = this.actors;
    const escrow = this.w.escrow;
    switch (a.k) {
      case "pay": {
        const from = this.payers[a.from];
        let rec: Rec;
        if (a.reuse && this.recs.length > 0) {
          rec = this.recs[a.pick % this.recs.length];
        } else {
          const f = a.fault;
          const merchant = f === "merchant99" ? 99 : a.merchant;
          const tok: Tok | "EOA" = f === "eoaToken" ? "EOA" : a.token;
          const terms = this.baseTerms(merchant, T);
          terms.token = (tok === "EOA" ? A.stranger.address : this.tokenAddr[tok]) as Address;
          terms.amount = f === "zeroAmount" ? 0n : tok === "ETH" ? a.amount * 1_000_000_007n : a.amount;
          const named = f === "wrongPayer" ? (from === A.other ? A.payer : A.other) : from;
          terms.payer = (a.payerField === "any" && f !== "wrongPayer" ? zeroAddress : named.address) as Address;
          terms.arbiter = (a.arbiter ? A.arbiter.address : zeroAddress) as Address;
          terms.holdDuration = f === "holdTooLong" ? MAX_HOLD + 1 : a.hold;
          // "expired": expiresAt == block.timestamp, the first second the invoice can no longer be paid.
          terms.expiresAt = BigInt(T + (f === "expired" ? 0 : { ok: DAY, justOk: 1, short: 60 }[a.expiry]));
          terms.fulfillBy = f === "fulfillPast" ? BigInt(T - 1) : a.fulfill === "none" ? 0n : BigInt(T + { now: 0, soon: 3_600, later: 4 * DAY }[a.fulfill]);
          terms.maxFeeBps = a.maxFee === "current" ? this.feeBps : a.maxFee === "any" ? MAX_FEE_BPS : a.maxFee;
          terms.detailsHash = keccak256(toHex(`details-${this.counter}`));
          const signer = f === "badSig" ? this.w.wrongSigner : merchant === 2 ? this.w.signer2 : this.w.signer;
          rec = await this.newRec(terms, signer, tok, f !== "badSig");
        }
        const t = rec.terms;
        const tok = rec.tok;
        const isEth = t.token === zeroAddress;
        let value = isEth ? t.amount : 0n;
        if (a.fault === "wrongValue") value = isEth ? (t.amount > 1n && a.pick % 2 === 0 ? t.amount - 1n : t.amount + 1n) : 1n;
        const errs: string[] = [];
        if (this.paused) errs.push("PaymentsPaused");
        if (t.amount === 0n) errs.push("ZeroAmount");
        if (BigInt(T) >= t.expiresAt) errs.push("InvoiceExpired");
        if (t.payer !== zeroAddress && t.payer !== from.address) errs.push("WrongPayer");
        if (t.holdDuration > MAX_HOLD) errs.push("HoldTooLong");
        if (t.fulfillBy !== 0n && BigInt(T) > t.fulfillBy) errs.push("FulfillByPassed");
        if (this.feeBps > t.maxFeeBps) errs.push("FeeAboveMaximum");
        if (tok === "EOA") errs.push("TokenNotContract");
        if (rec.status !== S.None) errs.push("InvoiceNotPayable");
        if (t.merchantId !== 1n && t.merchantId !== 2n) errs.push("UnknownMerchant");
        if (!rec.validSig) errs.push("InvalidSignature");
        if (isEth ? value !== t.amount : value !== 0n) errs.push("WrongNativeAmount");
        if (tok === "USDC" || tok === "BUSD") {
          if (from === A.stranger) errs.push("ERC20InsufficientAllowance");
          if (tok === "BUSD" && (this.isBlocked(from.address) || this.isBlocked(this.escrowAddr))) errs.push("Blocklisted");
        }
        const source = isEth && !from.eoa ? A.rrOperator : from;
        return {
          desc: `pay ${this.recLabel(rec)} by ${from.name} value=${value}`,
          errs,
          send: () => this.call(from, escrow, "pay", [t, rec.sig], value),
          payIn: tok === "EOA" ? undefined : { payer: from.name, source: source.name, tok, amount: t.amount, merchant: Number(t.merchantId) },
          apply: () => {
            const k = tok as Tok;
            rec.status = S.Held;
            rec.payer = from;
            rec.releaseAt = T + t.holdDuration;
            rec.feeBps = this.feeBps;
            this.bal[source.name][k] -= t.amount;
            this.bal.escrow[k] += t.amount;
          },
        };
      }
      case "void": {
        let rec: Rec;
        if (a.fresh || this.recs.length === 0) {
          const terms = this.baseTerms(a.merchant, T);
          rec = await this.newRec(terms, a.merchant === 2 ? this.w.signer2 : this.w.signer, "USDC");
        } else {
          rec = this.recs[a.pick % this.recs.length];
        }
        const m = Number(rec.terms.merchantId);
        const by = a.byOperator ? this.operatorOf(m, rec) : A.stranger;
        const errs: string[] = [];
        if (!this.isOperator(by, m)) errs.push("NotMerchantOperator");
        if (rec.status !== S.None) errs.push("InvoiceNotPayable");
        return {
          desc: `voidInvoice ${this.recLabel(rec)} by ${by.name}`,
          errs,
          send: () => this.call(by, escrow, "voidInvoice", [rec.terms]),
          apply: () => {
            rec.status = S.Voided;
          },
        };
      }
      case "release": {
        const rec = this.pickRec(a, (r) => r.status === S.Held);
        if (!rec) return null;
        const payerActor = rec.payer ?? A.payer;
        const by = a.by === "keeper" ? A.keeper : a.by === "payer" ? payerActor : this.ownerOf(Number(rec.terms.merchantId));
        const errs: string[] = [];
        if (rec.status === S.Disputed) errs.push("PaymentDisputed");
        if (rec.status !== S.Held) errs.push("NotHeld");
        if (by.address !== rec.payer?.address) {
          if (T < rec.releaseAt) errs.push("HoldNotEnded");
          if (rec.terms.fulfillBy !== 0n && !rec.fulfilled) errs.push("NotFulfilled");
        }
        return {
          desc: `release ${this.recLabel(rec)} by ${by.name}`,
          errs,
          send: () => this.call(by, escrow, "release", [rec.terms]),
          apply: () => {
            this.releaseToMerchant(rec, this.held(rec));
            rec.status = S.Released;
          },
        };
      }
      case "refund": {
        const rec = this.pickRec(a);
        if (!rec) return null;
        const m = Number(rec.terms.merchantId);
        const by = a.by === "operator" ? this.operatorOf(m, rec) : a.by === "stranger" ? A.stranger : this.ownerOf(m === 2 ? 1 : 2);
        const held = this.held(rec);
        const amount = this.amountFor(a.mode, a.frac, held, rec.terms.amount);
        const errs: string[] = [];
        if (!this.isOperator(by, m)) errs.push("NotMerchantOperator");
        if (amount === 0n) errs.push("ZeroAmount");
        if (!this.isLive(rec)) errs.push("NotHeld");
        if (amount > rec.terms.amount - rec.refunded) errs.push("RefundExceedsHeld");
        return {
          desc: `refund ${this.recLabel(rec)} amount=${amount} (held ${held}) by ${by.name}`,
          errs,
          send: () => this.call(by, escrow, "refund", [rec.terms, amount]),
          apply: () => this.refundToPayer(rec, amount),
        };
      }
      case "dispute":
      case "withdrawDispute": {
        const rec = this.pickRec(a, (r) => r.status === (a.k === "dispute" ? S.Held : S.Disputed));
        if (!rec) return null;
        const payerActor = rec.payer ?? A.payer;
        const by = a.byPayer ? payerActor : payerActor === A.other ? A.payer : A.other;
        const errs: string[] = [];
        if (a.k === "dispute") {
          if (rec.status !== S.Held) errs.push("NotHeld");
          if (by.address !== rec.payer?.address) errs.push("NotPayer");
          if (rec.disputeOpened) errs.push("DisputeAlreadyWithdrawn");
          if (T >= rec.releaseAt) errs.push("HoldEnded");
        } else {
          if (rec.status !== S.Disputed) errs.push("NotDisputed");
          if (by.address !== rec.payer?.address) errs.push("NotPayer");
        }
        return {
          desc: `${a.k} ${this.recLabel(rec)} by ${by.name}`,
          errs,
          send: () => this.call(by, escrow, a.k, [rec.terms]),
          apply: () => {
            rec.status = a.k === "dispute" ? S.Disputed : S.Held;
            if (a.k === "dispute") rec.disputeOpened = true;
          },
        };
      }
      case "resolve": {
        const rec = this.pickRec(a, (r) => r.status === S.Disputed && r.terms.arbiter !== zeroAddress);
        if (!rec) return null;
        const by = a.byArbiter ? A.arbiter : A.keeper;
        const held = this.held(rec);
        // The ruling is a share of what is held; "over" is a share above 100 %.
        const share = { full: 10_000, zero: 0, partial: a.frac, over: 10_001 }[a.mode];
        // Rounded up: a ruling's rounding favours the payer.
        const amount = (held * BigInt(share) + BPS - 1n) / BPS;
        const errs: string[] = [];
        if (rec.terms.arbiter === zeroAddress || by.address !== rec.terms.arbiter) errs.push("NotArbiter");
        if (share > 10_000) errs.push("InvalidRefundShare");
        if (rec.status !== S.Disputed) errs.push("NotDisputed");
        if (T >= rec.releaseAt + this.disputePeriod) errs.push("DisputeDeadlinePassed");
        return {
          desc: `resolveDispute ${this.recLabel(rec)} share=${share} bps -> refund ${amount} (held ${held}) by ${by.name}`,
          errs,
          send: () => this.call(by, escrow, "resolveDispute", [rec.terms, share]),
          apply: () => {
            const releasedAmount = held - amount;
            if (amount !== 0n) this.refundToPayer(rec, amount);
            if (releasedAmount !== 0n) {
              this.releaseToMerchant(rec, releasedAmount);
              rec.status = S.Released;
            }
          },
        };
      }
      case "refundUnfulfilled": {
        const rec = this.pickRec(a, (r) => this.isLive(r) && r.terms.fulfillBy !== 0n);
        if (!rec) return null;
        const errs: string[] = [];
        if (!this.isLive(rec)) errs.push("NotHeld");
        if (rec.terms.fulfillBy === 0n) errs.push("NoFulfillmentDeadline");
        if (rec.fulfilled) errs.push("AlreadyFulfilled");
        if (BigInt(T) <= rec.terms.fulfillBy) errs.push("FulfillmentDeadlineNotPassed");
        return {
          desc: `refundUnfulfilled ${this.recLabel(rec)} by keeper`,
          errs,
          send: () => this.call(A.keeper, escrow, "refundUnfulfilled", [rec.terms]),
          apply: () => this.refundToPayer(rec, this.held(rec)),
        };
      }
      case "refundExpiredDispute": {
        const rec = this.pickRec(a, (r) => r.status === S.Disputed);
        if (!rec) return null;
        const errs: string[] = [];
        if (rec.status !== S.Disputed) errs.push("NotDisputed");
        if (T < rec.releaseAt + this.disputePeriod) errs.push("DisputeDeadlineNotPassed");
        return {
          desc: `refundExpiredDispute ${this.recLabel(rec)} by keeper`,
          errs,
          send: () => this.call(A.keeper, escrow, "refundExpiredDispute", [rec.terms]),
          apply: () => this.refundToPayer(rec, this.held(rec)),
        };
      }
      case "markFulfilled": {
        const rec = this.pickRec(a);
        if (!rec) return null;
        const m = Number(rec.terms.merchantId);
        const by = a.byOperator ? this.operatorOf(m, rec) : A.stranger;
        const errs: string[] = [];
        if (!this.isOperator(by, m)) errs.push("NotMerchantOperator");
        if (!this.isLive(rec)) errs.push("NotHeld");
        if (rec.fulfilled) errs.push("AlreadyFulfilled");
        if (rec.terms.fulfillBy !== 0n && BigInt(T) > rec.terms.fulfillBy) errs.push("FulfillmentDeadlinePassed");
        return {
          desc: `markFulfilled ${this.recLabel(rec)} by ${by.name}`,
          errs,
          send: () => this.call(by, escrow, "markFulfilled", [rec.terms]),
          apply: () => {
            rec.fulfilled = true;
          },
        };
      }
      case "claim": {
        let claimer = this.claimers[a.who % this.claimers.length];
        let tok = TOKENS[a.token % TOKENS.length];
        if (a.preferNonzero) {
          const options = this.claimers.flatMap((c) => TOKENS.filter((k) => this.claim[c.name][k] > 0n).map((k) => [c, k] as const));
          if (options.length > 0) [claimer, tok] = options[(a.who * 3 + a.token) % options.length];
        }
        const to =
          a.to === "self" ? claimer.address : a.to === "claimTo" ? A.claimTo.address : a.to === "zero" ? zeroAddress : (claimer === A.rrPayout ? A.rrPayer : A.rrPayout).address;
        const amount = this.claim[claimer.name][tok];
        const errs: string[] = [];
        if (to === zeroAddress) errs.push("ZeroAddress");
        else errs.push(...this.strictSendErrs(tok, to));
        if (amount === 0n) errs.push("NothingToClaim");
        return {
          desc: `claim ${tok} ${amount} by ${claimer.name} to ${to === zeroAddress ? "0x0" : this.name(to)}`,
          errs,
          send: () => this.call(claimer, escrow, "claim", [this.tokenAddr[tok], to]),
          claim: { claimer: claimer.name, to: to === zeroAddress ? "" : this.name(to) },
          apply: () => {
            this.claim[claimer.name][tok] = 0n;
            this.bal[this.name(to)][tok] += amount;
            this.bal.escrow[tok] -= amount;
          },
        };
      }
      case "withdrawFees": {
        const tok = TOKENS[a.token % TOKENS.length];
        const amount = this.fees[tok];
        const errs: string[] = [];
        if (amount === 0n) errs.push("NoFees");
        errs.push(...this.strictSendErrs(tok, A.feeRecipient.address));
        return {
          desc: `withdrawFees ${tok} ${amount} by keeper`,
          errs,
          send: () => this.call(A.keeper, escrow, "withdrawFees", [this.tokenAddr[tok]]),
          apply: () => {
            this.fees[tok] = 0n;
            this.bal.feeRecipient[tok] += amount;
            this.bal.escrow[tok] -= amount;
          },
        };
      }
      case "setFee": {
        const by = a.byOwner ? A.owner : A.stranger;
        const errs: string[] = [];
        if (!a.byOwner) errs.push("OwnableUnauthorizedAccount");
        if (a.bps > MAX_FEE_BPS) errs.push("FeeTooHigh");
        return {
          desc: `setFee ${a.bps} by ${by.name}`,
          errs,
          send: () => this.call(by, escrow, "setFee", [a.bps]),
          apply: () => {
            this.feeBps = a.bps;
          },
        };
      }
      case "setPaused":
        return {
          desc: `setPaused ${a.paused}`,
          errs: [],
          send: () => this.call(A.owner, escrow, "setPaused", [a.paused]),
          apply: () => {
            this.paused = a.paused;
          },
        };
      case "blocklist": {
        const who = this.blockTargets[a.who % this.blockTargets.length];
        return {
          desc: `BUSD.setBlocklisted ${who.name} ${a.on}`,
          errs: [],
          send: () => this.call(A.keeper, this.w.busd, "setBlocklisted", [who.address, a.on]),
          apply: () => {
            if (a.on) this.blocked.add(who.address.toLowerCase());
            else this.blocked.delete(who.address.toLowerCase());
          },
        };
      }
      case "time":
        return { desc: `time +${a.seconds}s`, time: a.seconds };
      case "advance":
        return this.advance(a);
      case "timeTo": {
        const rec = this.pickRec(a, (r) =>
          a.which === "deadline" ? r.status === S.Disputed : a.which === "fulfill" ? this.isLive(r) && r.terms.fulfillBy !== 0n : this.isLive(r),
        );
        if (!rec || rec.status === S.None || rec.status === S.Voided) return null;
        const base =
          a.which === "release" ? rec.releaseAt : a.which === "deadline" ? rec.releaseAt + this.disputePeriod : Number(rec.terms.fulfillBy);
        if (a.which === "fulfill" && rec.terms.fulfillBy === 0n) return null;
        // The next transaction runs at clock.now + 1: land it exactly on base + offset.
        const jump = base + a.offset - 1 - this.clock.now;
        if (jump < 1) return null;
        return { desc: `time +${jump}s (next tx at ${a.which} of inv${rec.n} ${a.offset >= 0 ? "+" : ""}${a.offset})`, time: jump };
      }
    }
  }

  /** The valid moves from the current state: of a live invoice, or a claim of a claimable balance. */
  private async advance(a: Extract<Action, { k: "advance" }>): Promise<Plan> {
    const T = this.clock.now + 1;
    const t = { pick: 0, live: true };
    const moves: Action[] = [];
    const live = this.recs.filter((r) => this.isLive(r));
    const rec = live.length > 0 ? live[a.pick % live.length] : undefined;
    if (rec) {
      const deadline = rec.releaseAt + this.disputePeriod;
      const canFulfil = !rec.fulfilled && (rec.terms.fulfillBy === 0n || BigInt(T) <= rec.terms.fulfillBy);
      const mode: Mode = a.mode === "over" || a.mode === "zero" ? "partial" : a.mode;
      moves.push({ k: "refund", ...t, mode, frac: a.frac, by: "operator" });
      if (canFulfil) moves.push({ k: "markFulfilled", ...t, byOperator: true });
      if (rec.terms.fulfillBy !== 0n && !rec.fulfilled && BigInt(T) > rec.terms.fulfillBy) moves.push({ k: "refundUnfulfilled", ...t });
      if (rec.status === S.Held) {
        moves.push({ k: "release", ...t, by: "payer" });
        if (T < rec.releaseAt && !rec.disputeOpened) {
          moves.push({ k: "dispute", ...t, byPayer: true }, { k: "dispute", ...t, byPayer: true });
          moves.push({ k: "timeTo", ...t, which: "release", offset: 0 });
        } else if (rec.terms.fulfillBy === 0n || rec.fulfilled) {
          moves.push({ k: "release", ...t, by: "keeper" }, { k: "release", ...t, by: "keeper" });
        }
      } else {
        moves.push({ k: "withdrawDispute", ...t, byPayer: true });
        if (T < deadline) {
          if (rec.terms.arbiter !== zeroAddress) moves.push({ k: "resolve", ...t, mode: a.mode === "over" ? "partial" : a.mode, frac: a.frac, byArbiter: true });
          moves.push({ k: "timeTo", ...t, which: "deadline", offset: 0 });
        } else {
          moves.push({ k: "refundExpiredDispute", ...t }, { k: "refundExpiredDispute", ...t });
        }
      }
    }
    if (this.claimers.some((c) => TOKENS.some((k) => this.claim[c.name][k] > 0n))) {
      moves.push({ k: "claim", who: a.pick, token: a.choice, to: a.choice % 3 === 0 ? "self" : "claimTo", preferNonzero: true });
    }
    const feeTokens = TOKENS.filter((k) => this.fees[k] > 0n);
    if (feeTokens.length > 0) moves.push({ k: "withdrawFees", token: TOKENS.indexOf(feeTokens[a.pick % feeTokens.length]) });
    if (moves.length === 0) {
      // Nothing to advance: pay a fresh, valid invoice instead.
      moves.push({
        k: "pay",
        reuse: false,
        pick: a.pick,
        merchant: a.pick % 2 === 0 ? 1 : 2,
        token: (["ETH", "USDC", "ETH", "BUSD"] as const)[a.choice % 4],
        amount: BigInt(1 + ((a.frac * 7_919) % 1_000_000_000)),
        from: [0, 1, 2, 2][a.choice % 4],
        payerField: "any",
        arbiter: a.frac % 4 !== 0,
        hold: a.frac % 3 === 0 ? 3_600 : 3 * DAY,
        fulfill: a.frac % 5 === 0 ? "soon" : "none",
        expiry: "ok",
        maxFee: a.choice % 2 === 0 ? "current" : "any",
        fault: "none",
      });
    }
    const move = moves[a.choice % moves.length];
    this.forced = move.k === "claim" ? undefined : rec;
    try {
      return await this.plan(move);
    } finally {
      this.forced = undefined;
    }
  }

  private amountFor(m: Mode, fr: number, held: bigint, invoiceAmount: bigint): bigint {
    const base = held > 0n ? held : invoiceAmount;
    switch (m) {
      case "full":
        return base;
      case "partial":
        return base > 1n ? 1n + ((base - 1n) * BigInt(fr)) / BPS : base;
      case "over":
        return base + 1n;
      case "zero":
        return 0n;
    }
  }

  private refundToPayer(rec: Rec, amount: bigint): void {
    rec.refunded += amount;
    if (rec.refunded === rec.terms.amount) rec.status = S.Refunded;
    this.deliver(rec.tok as Tok, rec.payer!.address, amount);
  }

  private releaseToMerchant(rec: Rec, amount: bigint): void {
    const fee = (amount * BigInt(rec.feeBps)) / BPS;
    this.fees[rec.tok as Tok] += fee;
    rec.fee += fee;
    rec.released += amount - fee;
    this.deliver(rec.tok as Tok, this.payoutOf(Number(rec.terms.merchantId)).address, amount - fee);
  }

  // ---------------------------------------------------------------------------------------------- stepping

  async step(a: Action): Promise<void> {
    const plan = await this.plan(a);
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
        // Invoices created by this very step (a fresh invoice that failed to pay) were not in `before`.
        unchangedByRevert: (after, before) => ({ ...after, inv: after.inv.slice(0, before.inv.length) }),
        onSuccess: (_done, _before, logs) => this.recordEvents(logs),
      },
      this.last,
      plan,
    );
  }

  private recordEvents(logs: readonly { address: string; topics: readonly string[]; data: string }[]): void {
    for (const log of logs) {
      if (log.address.toLowerCase() !== this.escrowAddr.toLowerCase()) continue;
      const parsed = this.w.escrow.interface.parseLog({ topics: [...log.topics], data: log.data });
      if (!parsed) continue;
      const rec = this.recs.find((r) => r.key === parsed.args.key);
      if (parsed.name === "InvoiceReleased") {
        if (!rec) this.fail(`InvoiceReleased for an unknown key ${parsed.args.key}`);
        rec.evReleased += parsed.args.amount as bigint;
        rec.evFee += parsed.args.fee as bigint;
      } else if (parsed.name === "InvoiceRefunded") {
        if (!rec) this.fail(`InvoiceRefunded for an unknown key ${parsed.args.key}`);
        rec.evRefunded += parsed.args.amount as bigint;
      }
    }
  }

  private fail(message: string): never {
    throw new PropertyViolation(message, this.trace);
  }

  // ---------------------------------------------------------------------------------------------- observation

  private readonly calldata = new CalldataCache();

  private async observe(): Promise<Obs> {
    const e = this.w.escrow.interface;
    const bal: Record<string, PerTok> = {};
    const claim: Record<string, PerTok> = {};
    for (const actor of this.tracked) {
      bal[actor.name] = {
        ETH: await ethBalance(actor.address),
        USDC: await callUint(this.tokenAddr.USDC, balanceOfData(actor.address)),
        BUSD: await callUint(this.tokenAddr.BUSD, balanceOfData(actor.address)),
      };
      const c = zero();
      for (const tok of TOKENS) {
        const data = this.calldata.get(`claimable ${actor.name} ${tok}`, () => e.encodeFunctionData("claimable", [actor.address, this.tokenAddr[tok]]));
        c[tok] = await callUint(this.escrowAddr, data);
      }
      claim[actor.name] = c;
    }
    const fees = zero();
    for (const tok of TOKENS) {
      fees[tok] = await callUint(this.escrowAddr, this.calldata.get(`fees ${tok}`, () => e.encodeFunctionData("accruedFees", [this.tokenAddr[tok]])));
    }
    const config = words(await rawCall(this.escrowAddr, this.calldata.get("config", () => e.encodeFunctionData("config"))));
    const inv: Obs["inv"] = [];
    for (const rec of this.recs) {
      const p = words(await rawCall(this.escrowAddr, rec.cdPayment));
      inv.push({
        payer: "0x" + p[0].toString(16).padStart(40, "0"),
        releaseAt: Number(p[1]),
        status: Number(p[2]),
        feeBps: Number(p[3]),
        fulfilled: p[4] !== 0n,
        disputeOpened: p[6] !== 0n,
        held: await callUint(this.escrowAddr, rec.cdHeld),
        refunded: await callUint(this.escrowAddr, rec.cdRefunded),
      });
    }
    return { bal, claim, fees, feeBps: Number(config[1]), paused: config[2] !== 0n, inv };
  }

  /** Conservation, measured at the receivers: who got how much out of the escrow in this step. */
  private flows(before: Obs, after: Obs, plan: TxPlan | undefined): void {
    for (const tok of TOKENS) {
      if (plan?.payIn && plan.payIn.tok === tok) {
        const { payer, source, amount, merchant } = plan.payIn;
        this.totalIn[tok] += amount;
        this.paidIn[payer][tok] += amount;
        this.merchantIn[merchant][tok] += amount;
        const escrowDelta = after.bal.escrow[tok] - before.bal.escrow[tok];
        if (escrowDelta !== amount) this.fail(`pay moved ${escrowDelta} ${tok} into the escrow, expected ${amount}`);
        const sourceDelta = after.bal[source][tok] - before.bal[source][tok];
        if (sourceDelta !== -amount) this.fail(`pay moved ${sourceDelta} ${tok} from ${source}, expected ${-amount}`);
      }
      for (const actor of this.tracked) {
        if (actor.name === "escrow") continue;
        if (plan?.payIn && plan.payIn.tok === tok && actor.name === plan.payIn.source) continue;
        const delta = after.bal[actor.name][tok] - before.bal[actor.name][tok];
        if (delta < 0n) this.fail(`${actor.name} lost ${-delta} ${tok} in a step that was not its payment`);
        if (delta === 0n) continue;
        const beneficiary = plan?.claim && plan.claim.to === actor.name ? plan.claim.claimer : actor.name;
        this.outTo[beneficiary][tok] += delta;
        this.totalOut[tok] += delta;
      }
    }
  }

  // ---------------------------------------------------------------------------------------------- invariants

  private check(obs: Obs): void {
    const A = this.actors;
    if (this.tracked.some((actor) => TOKENS.some((tok) => obs.claim[actor.name][tok] > 0n))) this.stepsWithClaimable += 1;
    for (const tok of TOKENS) {
      // Solvency, from the contract's own views.
      let held = 0n;
      this.recs.forEach((rec, i) => {
        if (rec.tok === tok) held += obs.inv[i].held;
      });
      let claimable = 0n;
      for (const actor of this.tracked) claimable += obs.claim[actor.name][tok];
      const balance = obs.bal.escrow[tok];
      if (balance !== held + claimable + obs.fees[tok]) {
        this.fail(`solvency broken for ${tok}: balance ${balance} != held ${held} + claimable ${claimable} + fees ${obs.fees[tok]}`);
      }
      // Conservation, from the receivers' balances.
      if (this.totalOut[tok] > this.totalIn[tok]) this.fail(`${tok}: paid out ${this.totalOut[tok]} > paid in ${this.totalIn[tok]}`);
      if (balance !== this.escrowStart[tok] + this.totalIn[tok] - this.totalOut[tok]) {
        this.fail(`${tok}: escrow balance ${balance} != start + in ${this.totalIn[tok]} - out ${this.totalOut[tok]}`);
      }
      for (const p of this.payers) {
        if (this.outTo[p.name][tok] > this.paidIn[p.name][tok]) this.fail(`${p.name} got back ${this.outTo[p.name][tok]} ${tok} but paid ${this.paidIn[p.name][tok]}`);
      }
      for (const m of [1, 2]) {
        const payout = this.payoutOf(m).name;
        if (this.outTo[payout][tok] > this.merchantIn[m][tok]) this.fail(`merchant ${m} received ${this.outTo[payout][tok]} ${tok} of ${this.merchantIn[m][tok]} paid to it`);
      }
      if (this.outTo.feeRecipient[tok] * 10n > this.totalIn[tok]) this.fail(`fee recipient received more than 10% of ${tok} paid in`);
      for (const other of [A.claimTo, A.rrOperator, A.keeper, A.merchantOwner, A.merchant2Owner, A.signer2, A.arbiter, A.owner]) {
        if (this.outTo[other.name][tok] !== 0n) this.fail(`${other.name} received ${this.outTo[other.name][tok]} ${tok} on its own account`);
      }
    }
    // Per invoice: what was refunded, released and taken as fee never exceeds the amount, and accounts for it all.
    this.recs.forEach((rec, i) => {
      const o = obs.inv[i];
      const out = rec.evRefunded + rec.evReleased + rec.evFee;
      if (o.refunded !== rec.evRefunded) this.fail(`inv${rec.n}: refundedAmount ${o.refunded} != refunded in events ${rec.evRefunded}`);
      if (out > rec.terms.amount) this.fail(`inv${rec.n}: refunded ${rec.evRefunded} + released ${rec.evReleased} + fee ${rec.evFee} > amount ${rec.terms.amount}`);
      if (rec.status !== S.None && rec.status !== S.Voided && out + o.held !== rec.terms.amount) {
        this.fail(`inv${rec.n}: refunded + released + fee + held = ${out + o.held} != amount ${rec.terms.amount}`);
      }
    });
    // The chain equals the model.
    const diff = (what: string, chain: unknown, model: unknown) => {
      const differences = mismatches(chain, model);
      if (differences.length > 0) this.fail(`${what} differ from the model:\n  ${differences.join("\n  ")}`);
    };
    diff("balances", obs.bal, this.bal);
    diff("claimable", obs.claim, this.claim);
    diff("accrued fees", obs.fees, this.fees);
    diff("fee, paused", [obs.feeBps, obs.paused], [this.feeBps, this.paused]);
    this.recs.forEach((rec, i) => {
      const o = obs.inv[i];
      const paid = rec.status !== S.None && rec.status !== S.Voided;
      diff(`inv${rec.n} record`, [STATUS[o.status], o.payer.toLowerCase(), o.releaseAt, o.feeBps, o.fulfilled, o.disputeOpened], [
        STATUS[rec.status],
        (paid ? rec.payer!.address : zeroAddress).toLowerCase(),
        paid ? rec.releaseAt : 0,
        paid ? rec.feeBps : 0,
        rec.fulfilled,
        rec.disputeOpened,
      ]);
      diff(`inv${rec.n} held`, o.held, this.held(rec));
      diff(`inv${rec.n} refunded`, o.refunded, rec.refunded);
      diff(`inv${rec.n} model sums`, [rec.evRefunded, rec.evReleased, rec.evFee], [rec.refunded, rec.released, rec.fee]);
    });
  }
}

// ------------------------------------------------------------------------------------------------ the property

describe("BillingEscrow properties (fast-check, model-based)", function () {
  this.timeout(30 * 60_000); // a failure shrinks by replaying chain histories
  // Leave the chain as it was found (the zero base fee pinned here would otherwise leak into later files).
  let snapshot: SnapshotRestorer;
  before(async () => {
    snapshot = await takeSnapshot();
  });
  after(async () => {
    await snapshot.restore();
  });

  it("keeps every token solvent and conserved across random operation sequences", async () => {
    let runs = 0;
    let steps = 0;
    let withClaimable = 0;
    const outcomes = new Map<string, number>();
    await fc.assert(
      fc.asyncProperty(fc.array(actionArb, { minLength: 1, maxLength: 30, size: "max" }), async (actions) => {
        const world = await loadFixture(escrowWorld);
        await zeroFees();
        const addrs = {
          escrow: await world.escrow.getAddress(),
          usdc: await world.usdc.getAddress(),
          busd: await world.busd.getAddress(),
          rrPayer: await world.rrPayer.getAddress(),
          rrPayout: await world.rrPayout.getAddress(),
        };
        const [, feeBps] = await world.escrow.config();
        const model = new EscrowModel(world, addrs, Number(await world.escrow.DISPUTE_PERIOD()), Number(feeBps));
        await model.init();
        for (const action of actions) await model.step(action);
        if (process.env.PROPERTY_TRACE) console.log(model.trace.join("\n") + "\n----");
        runs += 1;
        steps += model.trace.length;
        withClaimable += model.stepsWithClaimable;
        for (const line of model.trace) {
          const m = / -> (ok|revert \w+)/.exec(line);
          const kind = line.replace(/^\d+\. (@\d+ )?/, "").split(" ")[0];
          const key = `${kind} ${m ? m[1] : "time"}`;
          outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
        }
      }),
      fcParams(150),
    );
    console.log(`      ${runs} runs, ${steps} steps (${withClaimable} with a claimable balance); outcomes: ${[...outcomes].sort().map(([k, v]) => `${k}=${v}`).join(", ")}`);
    expect(runs).to.be.greaterThan(0);
  });
});
