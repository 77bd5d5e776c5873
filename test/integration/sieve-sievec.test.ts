// Differential test: `emailng sieve check` against Dovecot's own compiler.
// Every script in test/fixtures/sieve/corpus is compiled by Pigeonhole's
// sievec (the real peer, two processes at a time) and checked by our
// checker with the same extensions and include directories; the test
// computes how often they agree on accept/reject, fails below 99%, and
// fails for any disagreement that DISAGREEMENTS.md does not explain.
import { copyFileSync, existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkScript } from "../../sieve-tools/check.js";
import { extensionSet } from "../../sieve-tools/extensions.js";
import { removeTempDir } from "../harness/process.js";
import {
  EXTRA_EXTENSIONS,
  type PigeonholeEnvironment,
  pigeonholeEnvironment,
  runPool,
  sievec,
} from "./sieve-peers.js";

const fixtures = new URL("../fixtures/sieve/", import.meta.url).pathname;
const corpusDir = join(fixtures, "corpus");
const personalDir = join(fixtures, "include/personal");
const globalDir = join(fixtures, "include/global");

interface Verdict {
  file: string;
  pigeonhole: boolean;
  pigeonholeOutput: string;
  ours: boolean;
  oursOutput: string;
}

let environment: PigeonholeEnvironment;
let verdicts: Verdict[] = [];

beforeAll(async () => {
  environment = pigeonholeEnvironment({ personalDir, globalDir });
  const allowed = extensionSet(EXTRA_EXTENSIONS).allowed;
  const includes = {
    read(location: "personal" | "global", name: string) {
      const path = join(location === "global" ? globalDir : personalDir, `${name}.sieve`);
      return existsSync(path) ? readFileSync(path) : null;
    },
  };
  const files = readdirSync(corpusDir)
    .filter((name) => name.endsWith(".sieve"))
    .sort();
  verdicts = await runPool(
    files.map((file, index) => async () => {
      // sievec names its messages after the file and may write beside it: use a copy.
      const copy = join(environment.dir, `script-${index}.sieve`);
      copyFileSync(join(corpusDir, file), copy);
      const result = await sievec(environment, copy, join(environment.dir, `script-${index}.svbin`));
      if (result.signal !== null || (result.code !== 0 && result.code !== 89 && result.code !== 1)) {
        throw new Error(`sievec ${file}: unexpected exit ${result.code ?? result.signal}: ${result.stderr}`);
      }
      const ours = checkScript(readFileSync(join(corpusDir, file)), { allowed, includes });
      return {
        file,
        pigeonhole: result.code === 0,
        pigeonholeOutput: result.stderr.trim(),
        ours: ours.valid,
        oursOutput: ours.diagnostics
          .map((d) => `${d.line}:${d.column}: ${d.severity}: ${d.message}`)
          .join("\n"),
      };
    }),
    2,
  );
}, 240_000);

afterAll(() => {
  if (environment !== undefined) removeTempDir(environment.dir);
});

describe("sieve check agrees with Pigeonhole's sievec", () => {
  it("covers at least 200 scripts, valid and invalid", () => {
    expect(verdicts.length).toBeGreaterThanOrEqual(200);
    expect(verdicts.filter((verdict) => verdict.pigeonhole).length).toBeGreaterThanOrEqual(80);
    expect(verdicts.filter((verdict) => !verdict.pigeonhole).length).toBeGreaterThanOrEqual(80);
  });

  it("agrees on accept/reject for at least 99% of the corpus", () => {
    const disagreements = verdicts.filter((verdict) => verdict.pigeonhole !== verdict.ours);
    const agreement = (verdicts.length - disagreements.length) / verdicts.length;
    const report = disagreements
      .map(
        (d) =>
          `${d.file}: sievec ${d.pigeonhole ? "accepts" : "rejects"}, we ${d.ours ? "accept" : "reject"}\n  sievec: ${d.pigeonholeOutput}\n  ours: ${d.oursOutput}`,
      )
      .join("\n");
    console.info(
      `sieve corpus: ${verdicts.length} scripts, ${verdicts.length - disagreements.length} agree (${(agreement * 100).toFixed(2)}%)`,
    );
    expect(agreement, report).toBeGreaterThanOrEqual(0.99);
  });

  it("explains every disagreement in DISAGREEMENTS.md", () => {
    const explained = new Set(
      [...readFileSync(join(fixtures, "DISAGREEMENTS.md"), "utf8").matchAll(/^## (\S+\.sieve)\s*$/gm)].map(
        (m) => m[1],
      ),
    );
    const unexplained = verdicts
      .filter((verdict) => verdict.pigeonhole !== verdict.ours && !explained.has(verdict.file))
      .map((verdict) => `${verdict.file}: sievec: ${verdict.pigeonholeOutput}\nours: ${verdict.oursOutput}`);
    expect(unexplained).toEqual([]);
    // An entry for a script that now agrees is stale and should go.
    const stale = [...explained].filter((file) => {
      const verdict = verdicts.find((candidate) => candidate.file === file);
      return verdict === undefined || verdict.pigeonhole === verdict.ours;
    });
    expect(stale).toEqual([]);
  });

  it("rejects what sievec rejects for the bad-input classes the issue names", () => {
    for (const file of [
      "core-unterminated-quoted.sieve",
      "core-multiline-unterminated.sieve",
      "core-bracket-comment-unterminated.sieve",
      "core-deep-blocks-32.sieve",
      "core-deep-tests-32.sieve",
      "realistic-invalid-utf8-string.sieve",
    ]) {
      const verdict = verdicts.find((candidate) => candidate.file === file);
      expect(verdict, file).toBeDefined();
      expect({ file, ours: verdict!.ours, pigeonhole: verdict!.pigeonhole }).toEqual({
        file,
        ours: false,
        pigeonhole: false,
      });
    }
  });
});
