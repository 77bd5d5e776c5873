import { chmod, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readSecretFile, SecretFileError } from "./secrets.js";

describe("readSecretFile", () => {
  let directory = "";
  beforeAll(async () => {
    directory = await mkdtemp(join(tmpdir(), "emailng-secret-"));
  });
  afterAll(async () => {
    await rm(directory, { recursive: true, force: true });
  });

  async function secretFile(name: string, content: string, mode = 0o600): Promise<string> {
    const path = join(directory, name);
    await writeFile(path, content);
    await chmod(path, mode);
    return path;
  }

  it.each([
    { name: "trailing newline", content: "s3cret\n", want: "s3cret" },
    { name: "trailing CRLF", content: "s3cret\r\n", want: "s3cret" },
    { name: "only one newline is trimmed", content: "s3cret\n\n", want: "s3cret\n" },
    { name: "no newline", content: "s3cret", want: "s3cret" },
    { name: "inner spaces kept", content: " a b \n", want: " a b " },
  ])("$name", async ({ name, content, want }) => {
    expect(await readSecretFile(await secretFile(name, content))).toBe(want);
  });

  it("accepts a group-readable file", async () => {
    expect(await readSecretFile(await secretFile("group", "x\n", 0o640))).toBe("x");
  });

  it("refuses a world-readable file and says how to fix it", async () => {
    const path = await secretFile("world", "x\n", 0o644);
    await expect(readSecretFile(path)).rejects.toThrow(
      `secret file ${path} is readable by every user (mode 0644); run: chmod o-rwx ${path}`,
    );
    await expect(readSecretFile(path)).rejects.toBeInstanceOf(SecretFileError);
  });

  it("refuses an empty secret", async () => {
    const path = await secretFile("empty", "\n");
    await expect(readSecretFile(path)).rejects.toThrow(`secret file ${path} is empty`);
  });

  it("refuses a directory and reports a missing file", async () => {
    const sub = join(directory, "sub");
    await mkdir(sub, { mode: 0o700 });
    await expect(readSecretFile(sub)).rejects.toThrow("is not a regular file");
    await expect(readSecretFile(join(directory, "absent"))).rejects.toThrow(
      /cannot open secret file .* \(ENOENT\)/,
    );
  });
});
