/**
 * The snapshot a running daemon answers from (verifyd, policyd, quotad): it
 * loads the snapshot file once at start, then reads only its metadata every
 * few seconds (and on reload(), i.e. SIGHUP) and, when a new version shows
 * up, loads it whole and builds its Resolver beside the one in use before
 * swapping the two in a single assignment. A request takes current() once
 * and keeps that object, so requests in flight finish on the old version.
 *
 * Nothing here is fatal. A missing or unreadable snapshot at start leaves
 * current() null (the daemon answers "temporary failure" until one appears);
 * a version that fails to load is logged once and skipped, the old one stays
 * in use. Freshness is decided on every call from the snapshot's own
 * createdAt, so a snapshot that sync-agent stopped refreshing turns stale
 * (and the daemons turn to temporary answers) without any reload.
 *
 * Loading reads SQLite synchronously (better-sqlite3): it runs from the timer
 * or the reload call, never inside a request, and blocks the event loop for
 * as long as the load takes (see bench/ for figures at 100,000 users).
 */
import type { Logger } from "pino";
import type { ResolverOptions } from "./model.js";
import { Resolver } from "./resolver.js";
import { readSnapshot, readSnapshotMeta, type SnapshotMeta } from "./snapshot-store.js";

export interface LiveSnapshotOptions {
  /** The snapshot file (config snapshot.path). */
  path: string;
  /** Older than this (from meta.createdAt) the snapshot is not fresh (config snapshot.max_age). */
  maxAgeMs: number;
  /** How often the metadata is read to notice a new version. Default 2000. */
  checkIntervalMs?: number;
  resolverOptions?: Partial<ResolverOptions>;
  log: Logger;
  /** Milliseconds since the epoch; tests pass a fake clock. */
  now?: () => number;
  /** Called after every swap, with the version now in use (metrics). */
  onSwap?: (meta: SnapshotMeta) => void;
}

export interface CurrentSnapshot {
  resolver: Resolver;
  meta: SnapshotMeta;
  /** now - meta.createdAt <= maxAgeMs; false too when createdAt cannot be read. */
  fresh: boolean;
}

/** What tells two snapshot files apart without loading them. */
function identity(meta: SnapshotMeta): string {
  return `${meta.version} ${meta.contentHash} ${meta.createdAt}`;
}

export const DEFAULT_CHECK_INTERVAL_MS = 2_000;

export class LiveSnapshot {
  private readonly options: LiveSnapshotOptions;
  private readonly now: () => number;
  private loaded: { resolver: Resolver; meta: SnapshotMeta; createdAtMs: number } | null = null;
  private timer: NodeJS.Timeout | undefined;
  /** A version that failed to load: not retried until the file changes or reload() asks. */
  private failedIdentity: string | null = null;
  /** The last metadata problem logged, so a missing file is not logged every interval. */
  private lastMetaProblem: string | null = null;

  constructor(options: LiveSnapshotOptions) {
    this.options = options;
    this.now = options.now ?? Date.now;
  }

  /** Loads what is there now (never throws) and starts the periodic check. */
  start(): void {
    this.check(false);
    if (this.timer !== undefined) return;
    const interval = this.options.checkIntervalMs ?? DEFAULT_CHECK_INTERVAL_MS;
    this.timer = setInterval(() => this.check(false), interval);
    // The daemon's listeners keep the process alive; this timer must not.
    this.timer.unref();
  }

  /** Stops the periodic check; current() keeps answering from the last version. */
  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** The version in use, or null before any snapshot could be loaded. */
  current(): CurrentSnapshot | null {
    const loaded = this.loaded;
    if (loaded === null) return null;
    const fresh = this.now() - loaded.createdAtMs <= this.options.maxAgeMs;
    return { resolver: loaded.resolver, meta: loaded.meta, fresh };
  }

  /** Age of the version in use in milliseconds, or null. */
  ageMs(): number | null {
    return this.loaded === null ? null : this.now() - this.loaded.createdAtMs;
  }

  /**
   * Checks now and loads a new version if there is one, retrying a version
   * that failed before (SIGHUP). Rejects when the file cannot be read or
   * loaded; the version in use, if any, stays.
   */
  async reload(): Promise<void> {
    const outcome = this.check(true);
    if (outcome.kind === "failed") throw outcome.error;
  }

  private check(force: boolean): { kind: "unchanged" | "swapped" } | { kind: "failed"; error: Error } {
    const { path, log } = this.options;
    let meta: SnapshotMeta | null;
    try {
      meta = readSnapshotMeta(path);
    } catch (error) {
      return this.metaProblem(`cannot read snapshot metadata: ${messageOf(error)}`, error, force);
    }
    if (meta === null) return this.metaProblem("no snapshot file (or no metadata in it)", undefined, force);
    if (this.lastMetaProblem !== null) {
      log.info({ path }, "snapshot file readable again");
      this.lastMetaProblem = null;
    }

    const next = identity(meta);
    if (this.loaded !== null && identity(this.loaded.meta) === next) return { kind: "unchanged" };
    if (
      this.loaded !== null &&
      this.loaded.meta.version === meta.version &&
      this.loaded.meta.contentHash === meta.contentHash
    ) {
      // Same content, confirmed again by sync-agent (touchSnapshot): only freshness moves.
      this.loaded = { ...this.loaded, meta, createdAtMs: Date.parse(meta.createdAt) };
      return { kind: "unchanged" };
    }
    if (!force && this.failedIdentity === next) return { kind: "unchanged" };

    try {
      const snapshot = readSnapshot(path);
      const resolver = new Resolver(snapshot.directory, this.options.resolverOptions);
      const previous = this.loaded?.meta;
      // The swap: one assignment, after everything is built.
      this.loaded = { resolver, meta: snapshot.meta, createdAtMs: Date.parse(snapshot.meta.createdAt) };
      this.failedIdentity = null;
      const details = {
        path,
        version: snapshot.meta.version,
        contentHash: snapshot.meta.contentHash,
        createdAt: snapshot.meta.createdAt,
        users: snapshot.directory.users.length,
        groups: snapshot.directory.groups.length,
        previousVersion: previous?.version ?? null,
      };
      if (previous !== undefined && snapshot.meta.version < previous.version) {
        log.warn(details, "snapshot version went backwards; using the file as it is now");
      } else {
        log.info(details, "snapshot loaded");
      }
      this.options.onSwap?.(snapshot.meta);
      return { kind: "swapped" };
    } catch (error) {
      this.failedIdentity = next;
      log.error(
        { path, err: error, version: meta.version, inUse: this.loaded?.meta.version ?? null },
        this.loaded === null
          ? "snapshot could not be loaded; answering temporary failures"
          : "snapshot could not be loaded; keeping the version in use",
      );
      return { kind: "failed", error: asError(error) };
    }
  }

  private metaProblem(
    problem: string,
    error: unknown,
    force: boolean,
  ): { kind: "unchanged" } | { kind: "failed"; error: Error } {
    if (force || this.lastMetaProblem !== problem) {
      this.options.log.warn(
        { path: this.options.path, err: error, inUse: this.loaded?.meta.version ?? null },
        problem,
      );
      this.lastMetaProblem = problem;
    }
    return force ? { kind: "failed", error: asError(error ?? new Error(problem)) } : { kind: "unchanged" };
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}
