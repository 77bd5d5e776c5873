/**
 * Runs a decision written once for both kinds of store. A decision is a
 * generator that yields each store operation's result (`yield* wait(...)`);
 * drive() hands the value straight back while the store answers at once
 * (the memory store: plain values, so a request costs no promise, no
 * microtask and no await) and goes on asynchronously from the first pending
 * promise (Redis). A rejected promise is thrown into the generator at the
 * yield, so the decision's own try/catch sees a store failure exactly as it
 * sees a store that throws synchronously.
 */
import { isPromiseLike, type MaybePromise } from "../core/maybe-promise.js";

/** A decision in progress: yields store answers, returns its result. */
export type Steps<T> = Generator<unknown, T, unknown>;

/**
 * One store operation inside a decision: `const hold = yield* wait(store.hold(login))`.
 * The driver resumes the generator with the settled value, so the type is the store's.
 */
export function* wait<T>(answer: MaybePromise<T>): Generator<MaybePromise<T>, T, unknown> {
  return (yield answer) as T;
}

/**
 * The generator's result: synchronously when every yielded answer was a
 * value, else a promise. An exception the generator does not catch is
 * thrown (synchronously) or rejects (after the first pending answer).
 */
export function drive<T>(steps: Steps<T>): MaybePromise<T> {
  let step = steps.next();
  while (step.done !== true) {
    if (isPromiseLike(step.value)) return finishAsync(steps, step.value);
    step = steps.next(step.value);
  }
  return step.value;
}

async function finishAsync<T>(steps: Steps<T>, first: PromiseLike<unknown>): Promise<T> {
  let pending = first;
  for (;;) {
    let failed = false;
    let settled: unknown;
    try {
      settled = await pending;
    } catch (error) {
      failed = true;
      settled = error;
    }
    // Outside the try: an exception of the generator itself must not be thrown back into it.
    let step = failed ? steps.throw(settled) : steps.next(settled);
    for (;;) {
      if (step.done === true) return step.value;
      if (isPromiseLike(step.value)) break;
      step = steps.next(step.value);
    }
    pending = step.value;
  }
}
