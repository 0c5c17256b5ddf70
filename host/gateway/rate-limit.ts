/** A token bucket: `ratePerSecond` tokens refill continuously up to `burst`. Used for the gateway's rate limits. */
export class TokenBucket {
  readonly ratePerSecond: number;
  readonly burst: number;
  #tokens: number;
  #updatedMs: number;

  /**
   * @param ratePerSecond - sustained rate, requests per second; `0` means unlimited.
   * @param burst - bucket size, requests (at least 1).
   */
  constructor(ratePerSecond: number, burst: number, now: () => number = () => performance.now()) {
    this.ratePerSecond = ratePerSecond;
    this.burst = Math.max(1, burst);
    this.#now = now;
    this.#tokens = this.burst;
    this.#updatedMs = now();
  }

  readonly #now: () => number;

  /** Takes one token. @returns false when the bucket is empty (the request must be refused). */
  tryTake(): boolean {
    if (this.ratePerSecond === 0) return true;
    const now = this.#now();
    this.#tokens = Math.min(this.burst, this.#tokens + ((now - this.#updatedMs) * this.ratePerSecond) / 1000);
    this.#updatedMs = now;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }
}
