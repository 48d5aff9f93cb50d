/**
 * Progress output for the scripts: numbered steps and details on stderr (so stdout stays the result), plain
 * text tables, and the tail of a log file when something fails.
 */
import { closeSync, existsSync, openSync, readSync, statSync } from "node:fs";

const started = Date.now();
const colour = process.stderr.isTTY && !process.env.NO_COLOR;
const dim = (text: string) => (colour ? `\x1b[2m${text}\x1b[22m` : text);
const bold = (text: string) => (colour ? `\x1b[1m${text}\x1b[22m` : text);

export function seconds(since = started): string {
  return `${((Date.now() - since) / 1000).toFixed(1)} s`;
}

/** A step: `▸ message` with the time since the script started. */
export function step(message: string): void {
  process.stderr.write(`${bold(`▸ ${message}`)} ${dim(`(${seconds()})`)}\n`);
}

/** A detail under the current step. */
export function detail(message: string): void {
  process.stderr.write(`  ${message}\n`);
}

/** Renders rows as an aligned text table; `rightAligned` lists the columns aligned to the right. */
export function table(headers: string[], rows: string[][], rightAligned: number[] = []): string {
  const widths = headers.map((header, column) => Math.max(header.length, ...rows.map((row) => (row[column] ?? "").length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, column) => (rightAligned.includes(column) ? cell.padStart(widths[column]) : cell.padEnd(widths[column])))
      .join("  ")
      .trimEnd();
  return [line(headers), widths.map((width) => "─".repeat(width)).join("  "), ...rows.map(line)].join("\n");
}

/** The last `count` lines of a text file (empty when it does not exist). */
export function tailFile(file: string, count = 25): string {
  if (!existsSync(file)) return "";
  const size = statSync(file).size;
  const length = Math.min(size, 64 * 1024);
  const buffer = Buffer.alloc(length);
  const descriptor = openSync(file, "r");
  try {
    readSync(descriptor, buffer, 0, length, size - length);
  } finally {
    closeSync(descriptor);
  }
  return buffer.toString("utf8").split("\n").slice(-count - 1).join("\n").trimEnd();
}

/** Reads what was appended to a file since the last call: for surfacing a child's log lines while waiting. */
export function followFile(file: string): () => string[] {
  let offset = existsSync(file) ? statSync(file).size : 0;
  let partial = "";
  return () => {
    if (!existsSync(file)) return [];
    const size = statSync(file).size;
    if (size < offset) offset = 0;
    if (size === offset) return [];
    const buffer = Buffer.alloc(size - offset);
    const descriptor = openSync(file, "r");
    try {
      readSync(descriptor, buffer, 0, buffer.length, offset);
    } finally {
      closeSync(descriptor);
    }
    offset = size;
    const lines = (partial + buffer.toString("utf8")).split("\n");
    partial = lines.pop() ?? "";
    return lines;
  };
}
