/**
 * A value that is at hand or still coming: code on the request path
 * answers directly when it can (no promise, microtask or await per
 * request) and returns a promise only when it has to wait.
 */

/** The value itself, or a promise of it. */
export type MaybePromise<T> = T | Promise<T>;

/** True for anything with a `then` method (a promise or a thenable). */
export function isPromiseLike<T>(value: T | PromiseLike<T>): value is PromiseLike<T> {
  return (
    typeof value === "object" && value !== null && typeof (value as { then?: unknown }).then === "function"
  );
}
