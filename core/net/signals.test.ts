/**
 * installShutdownHandlers, driven by emitting the signals in-process with a
 * fake exit: terminate runs once and exits 0 (1 when it fails); a failed
 * reload is logged and the process keeps running.
 */
import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { installShutdownHandlers } from "./signals.js";

const log = pino({ level: "silent" });
let uninstall: (() => void) | undefined;
afterEach(() => uninstall?.());

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe("installShutdownHandlers", () => {
  it("runs onTerminate once for repeated SIGTERM/SIGINT, then exits 0", async () => {
    const exits: number[] = [];
    let terminations = 0;
    uninstall = installShutdownHandlers({
      log,
      onTerminate: async () => {
        terminations += 1;
      },
      exit: (code) => exits.push(code),
    });
    process.emit("SIGTERM", "SIGTERM");
    process.emit("SIGINT", "SIGINT");
    await tick();
    expect(terminations).toBe(1);
    expect(exits).toEqual([0]);
  });

  it("exits 1 when onTerminate fails", async () => {
    const exits: number[] = [];
    uninstall = installShutdownHandlers({
      log,
      onTerminate: () => Promise.reject(new Error("stuck")),
      exit: (code) => exits.push(code),
    });
    process.emit("SIGINT", "SIGINT");
    await tick();
    expect(exits).toEqual([1]);
  });

  it("reloads on SIGHUP and keeps running when the reload fails", async () => {
    const exits: number[] = [];
    let reloads = 0;
    uninstall = installShutdownHandlers({
      log,
      onTerminate: async () => undefined,
      onReload: async () => {
        reloads += 1;
        if (reloads === 1) throw new Error("bad config");
      },
      exit: (code) => exits.push(code),
    });
    process.emit("SIGHUP", "SIGHUP");
    await tick();
    process.emit("SIGHUP", "SIGHUP");
    await tick();
    expect(reloads).toBe(2);
    expect(exits).toEqual([]);
  });

  it("removes its handlers when uninstalled", () => {
    const before = process.listenerCount("SIGTERM");
    const remove = installShutdownHandlers({
      log,
      onTerminate: async () => undefined,
      exit: () => undefined,
    });
    expect(process.listenerCount("SIGTERM")).toBe(before + 1);
    remove();
    expect(process.listenerCount("SIGTERM")).toBe(before);
  });
});
