/**
 * A FIFO with O(1) push and shift (Array.prototype.shift is O(n) on large
 * arrays): items live in an array read from a head index; the consumed front
 * is dropped once it is at least half of the array.
 */
export class Queue<T> {
  private items: (T | undefined)[] = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(item: T): void {
    this.items.push(item);
  }

  /** The oldest item, removed; undefined when empty. */
  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head];
    this.items[this.head++] = undefined;
    if (this.head >= this.items.length) {
      this.items = [];
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }

  clear(): void {
    this.items = [];
    this.head = 0;
  }
}

/**
 * Empties an array that is filled and emptied again and again (a batch, a
 * write round) and keeps its storage. `a.length = 0` makes V8 free the
 * backing store of any array with 16 or more slots, so the next pushes
 * allocate it again, once per batch (bench/RESULTS.md, 2026-12-07 22:00:
 * ~1 MB/s of the hls50 server's allocation); pop() gives slots back only
 * while more than half of them would be unused, so an array emptied this way
 * settles at the size its batches need.
 */
export function emptyArray(a: unknown[]): void {
  while (a.length > 0) a.pop();
}
