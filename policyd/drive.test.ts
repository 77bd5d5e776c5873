/**
 * The driver of decisions (drive.ts) on its own: straight through while the
 * answers are values, asynchronous from the first promise, a rejection thrown
 * into the generator at its yield, the generator's own exception let out.
 */
import { describe, expect, it } from "vitest";
import { isPromiseLike, type MaybePromise } from "../core/maybe-promise.js";
import { drive, type Steps, wait } from "./drive.js";

function* twoReads(first: MaybePromise<number>, second: () => MaybePromise<number>): Steps<string> {
  let a: number;
  try {
    a = yield* wait(first);
  } catch (error) {
    return `caught ${(error as Error).message}`;
  }
  const b = yield* wait(second());
  if (b < 0) throw new Error("negative");
  return `sum ${a + b}`;
}

describe("drive", () => {
  it("returns the value itself when every answer is a value", () => {
    const result = drive(twoReads(1, () => 2));
    expect(isPromiseLike(result)).toBe(false);
    expect(result).toBe("sum 3");
  });

  it.each([
    { name: "first pending", first: Promise.resolve(1), second: () => 2 },
    { name: "second pending", first: 1, second: () => Promise.resolve(2) },
    { name: "both pending", first: Promise.resolve(1), second: () => Promise.resolve(2) },
  ])("goes on asynchronously from the first promise ($name)", async ({ first, second }) => {
    const result = drive(twoReads(first, second));
    expect(isPromiseLike(result)).toBe(true);
    expect(await result).toBe("sum 3");
  });

  it("throws a rejection into the generator at its yield", async () => {
    const result = drive(twoReads(Promise.reject(new Error("down")), () => 2));
    expect(isPromiseLike(result)).toBe(true);
    expect(await result).toBe("caught down");
  });

  it("lets the generator's own exception out: thrown when synchronous, rejected after a promise", async () => {
    expect(() => drive(twoReads(1, () => -5))).toThrow("negative");
    await expect(drive(twoReads(Promise.resolve(1), () => -5))).rejects.toThrow("negative");
    // Not thrown back into the generator: its catch around the first read did not see it.
    await expect(drive(twoReads(1, () => Promise.resolve(-5)))).rejects.toThrow("negative");
  });
});
