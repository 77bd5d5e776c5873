// Proves the Redis harness: a private redis-server answers PING, SET and
// GET through redis-cli on its own port, and is gone after stop.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isAlive } from "../harness/process.js";
import { type Redis, startRedis } from "../harness/redis.js";

describe("Redis harness", () => {
  let redis: Redis;

  beforeAll(async () => {
    const started = Date.now();
    redis = await startRedis();
    console.log(`redis-server started in ${Date.now() - started} ms, pid ${redis.pid}`);
  });

  afterAll(async () => {
    await redis?.destroy();
  });

  it("answers PING, SET and GET", async () => {
    expect((await redis.cli(["ping"])).stdout.trim()).toBe("PONG");
    expect((await redis.cli(["set", "emailng:test", "42"])).stdout.trim()).toBe("OK");
    expect((await redis.cli(["get", "emailng:test"])).stdout.trim()).toBe("42");
  });

  it("keeps nothing on disk", async () => {
    const save = await redis.cli(["config", "get", "save"]);
    expect(save.stdout.split("\n").map((line) => line.trim())).toEqual(["save", "", ""]);
    const appendonly = await redis.cli(["config", "get", "appendonly"]);
    expect(appendonly.stdout).toContain("no");
  });

  it("stops: the PID is gone", async () => {
    const pid = redis.pid;
    await redis.stop();
    expect(() => process.kill(pid, 0)).toThrow();
    expect(isAlive(pid)).toBe(false);
  });
});
