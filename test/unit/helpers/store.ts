/**
 * One real API store (embedded PGlite, migrations applied) per process, in a temporary directory removed at exit.
 * Opening one costs a few seconds (the WebAssembly build and `initdb`), so every unit test file shares it, and
 * StrykerJS, which keeps its test processes alive between mutants, opens it once per process too. Tests keep
 * their rows apart by merchant id (`uniqueId`), never by clearing tables.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { randomBytes } from "node:crypto";
import { openStore, type Store } from "../../../api/store";

let opened: Promise<Store> | undefined;

export function sharedStore(): Promise<Store> {
  if (!opened) {
    const directory = mkdtempSync(path.join(tmpdir(), "chainbill-unit-store-"));
    process.once("exit", () => rmSync(directory, { recursive: true, force: true }));
    opened = openStore({ directory });
  }
  return opened;
}

/** A fresh id, so tests sharing the store never see each other's rows. */
export function uniqueId(kind: string): string {
  return `${kind}_${randomBytes(8).toString("hex")}`;
}
