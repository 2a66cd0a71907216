/**
 * Holds one call of a real activity open until the test releases it, so a test can land an Update
 * in the window a workflow spends awaiting that activity (the activity itself runs unchanged).
 */
export class ActivityGate<Args extends unknown[]> {
  private pending: { match: (...args: Args) => boolean; entered: () => void; release: Promise<void> } | undefined;

  /** The next call whose arguments match is held: `entered` resolves when it starts, `release()` lets it run. */
  hold(match: (...args: Args) => boolean): { entered: Promise<void>; release: () => void } {
    let entered!: () => void;
    let release!: () => void;
    const enteredP = new Promise<void>((r) => (entered = r));
    const releaseP = new Promise<void>((r) => (release = r));
    this.pending = { match, entered, release: releaseP };
    return { entered: enteredP, release };
  }

  /** Wraps an activity function so that a held call waits for its release before running. */
  wrap<R>(fn: (...args: Args) => Promise<R>): (...args: Args) => Promise<R> {
    return async (...args: Args) => {
      const p = this.pending;
      if (p && p.match(...args)) {
        this.pending = undefined;
        p.entered();
        await p.release;
      }
      return fn(...args);
    };
  }
}
