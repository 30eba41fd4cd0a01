import { describe, expect, it, vi } from "vitest";
import {
  backoffDelay,
  DEFAULT_KEY,
  EMPTY_FEEDBACK,
  feedbackOps,
  Outbox,
  type KeyValueStore,
  type OutboxEntry,
} from "./outbox";

function memoryStore(initial: Record<string, string> = {}): KeyValueStore & { data: Record<string, string> } {
  const data = { ...initial };
  return {
    data,
    getItem: (k) => data[k] ?? null,
    setItem: (k, v) => {
      data[k] = v;
    },
  };
}

function makeOutbox(send: (e: OutboxEntry) => Promise<void> = async () => {}, store = memoryStore()) {
  let id = 0;
  const outbox = new Outbox({
    storage: store,
    send,
    now: () => 1000,
    newId: () => `e${++id}`,
    isPermanent: (err) => err instanceof Error && err.message.startsWith("refused"),
  });
  return { outbox, store };
}

describe("Outbox.enqueue", () => {
  it("stores an entry per op with its payload", () => {
    const { outbox } = makeOutbox();
    outbox.enqueue({ kind: "tag", output: "r1:a:1", by: "dana", tags: ["tone"], rating: 4, comment: "ok" });
    const [entry] = outbox.pending();
    expect(outbox.pending()).toHaveLength(1);
    expect(entry).toMatchObject({ kind: "tag", output: "r1:a:1", by: "dana", tags: ["tone"], rating: 4, comment: "ok", attempts: 0 });
  });

  it("dedupes an identical pending op", () => {
    const { outbox } = makeOutbox();
    const op = { kind: "tag" as const, output: "r1:a:1", by: "dana", tags: ["tone"] };
    outbox.enqueue(op);
    outbox.enqueue(op);
    expect(outbox.pending()).toHaveLength(1);
    expect(outbox.pending()[0]?.rev).toBe(0);
  });

  it("merges tags for the same output and evaluator, keeping the newest rating", () => {
    const { outbox } = makeOutbox();
    outbox.enqueue({ kind: "tag", output: "r1:a:1", by: "dana", tags: ["tone"], rating: 2 });
    outbox.enqueue({ kind: "tag", output: "r1:a:1", by: "dana", tags: ["hallucination"], rating: 5 });
    const pending = outbox.pending();
    expect(pending).toHaveLength(1);
    expect(pending[0]?.tags).toEqual(["tone", "hallucination"]);
    expect(pending[0]?.rating).toBe(5);
  });

  it("keeps different evaluators and outputs apart", () => {
    const { outbox } = makeOutbox();
    outbox.enqueue({ kind: "tag", output: "r1:a:1", by: "dana", tags: ["tone"] });
    outbox.enqueue({ kind: "tag", output: "r1:a:1", by: "lee", tags: ["tone"] });
    outbox.enqueue({ kind: "tag", output: "r2:a:1", by: "dana", tags: ["tone"] });
    expect(outbox.pending()).toHaveLength(3);
  });

  it("an untag removes the tag from a pending add, and still asks the engine to remove it", () => {
    const { outbox } = makeOutbox();
    outbox.enqueue({ kind: "tag", output: "o", by: "dana", tags: ["tone", "hallucination"] });
    outbox.enqueue({ kind: "untag", output: "o", by: "dana", tags: ["tone"] });
    const pending = outbox.pending();
    expect(pending.map((e) => [e.kind, e.tags])).toEqual([
      ["tag", ["hallucination"]],
      ["untag", ["tone"]],
    ]);
  });

  it("drops an add that has nothing left after an untag", () => {
    const { outbox } = makeOutbox();
    outbox.enqueue({ kind: "tag", output: "o", by: "dana", tags: ["tone"] });
    outbox.enqueue({ kind: "untag", output: "o", by: "dana", tags: ["tone"] });
    expect(outbox.pending().map((e) => e.kind)).toEqual(["untag"]);
  });

  it("re-adding a tag cancels its pending removal", () => {
    const { outbox } = makeOutbox();
    outbox.enqueue({ kind: "untag", output: "o", by: "dana", tags: ["tone"] });
    outbox.enqueue({ kind: "tag", output: "o", by: "dana", tags: ["tone"] });
    expect(outbox.pending().map((e) => [e.kind, e.tags])).toEqual([["tag", ["tone"]]]);
  });

  it("ignores an op with nothing to record", () => {
    const { outbox } = makeOutbox();
    outbox.enqueue({ kind: "tag", output: "o", by: "dana", tags: [] });
    outbox.enqueue({ kind: "untag", output: "o", by: "dana", tags: [] });
    expect(outbox.pending()).toEqual([]);
  });
});

describe("Outbox.flush", () => {
  it("sends entries oldest first and removes them on success", async () => {
    const sent: string[] = [];
    const { outbox } = makeOutbox(async (e) => {
      sent.push(`${e.kind}:${e.output}`);
    });
    outbox.enqueue({ kind: "tag", output: "a", by: "dana", tags: ["tone"] });
    outbox.enqueue({ kind: "tag", output: "b", by: "dana", tags: ["tone"] });
    outbox.enqueue({ kind: "untag", output: "a", by: "dana", tags: ["hallucination"] });
    const result = await outbox.flush();
    expect(sent).toEqual(["tag:a", "tag:b", "untag:a"]);
    expect(result).toMatchObject({ sent: 3, blocked: false });
    expect(outbox.pending()).toEqual([]);
  });

  it("keeps the failed entry and everything after it on a transient failure", async () => {
    const send = vi
      .fn<(e: OutboxEntry) => Promise<void>>()
      .mockResolvedValueOnce(undefined)
      .mockRejectedValueOnce(new Error("cannot reach the engine"));
    const { outbox } = makeOutbox(send);
    outbox.enqueue({ kind: "tag", output: "a", by: "dana", tags: ["tone"] });
    outbox.enqueue({ kind: "tag", output: "b", by: "dana", tags: ["tone"] });
    outbox.enqueue({ kind: "tag", output: "c", by: "dana", tags: ["tone"] });
    const result = await outbox.flush();
    expect(result).toMatchObject({ sent: 1, blocked: true, error: "cannot reach the engine" });
    expect(send).toHaveBeenCalledTimes(2);
    const left = outbox.pending();
    expect(left.map((e) => e.output)).toEqual(["b", "c"]);
    expect(left[0]).toMatchObject({ attempts: 1, lastError: "cannot reach the engine" });
  });

  it("retries the kept entries on the next flush", async () => {
    let fail = true;
    const sent: string[] = [];
    const { outbox } = makeOutbox(async (e) => {
      if (fail) throw new Error("offline");
      sent.push(e.output);
    });
    outbox.enqueue({ kind: "tag", output: "a", by: "dana", tags: ["tone"] });
    await outbox.flush();
    expect(outbox.pending()).toHaveLength(1);
    fail = false;
    await outbox.flush();
    expect(sent).toEqual(["a"]);
    expect(outbox.pending()).toEqual([]);
  });

  it("sets refused entries aside and carries on with the rest", async () => {
    const { outbox } = makeOutbox(async (e) => {
      if (e.output === "bad") throw new Error("refused: unknown tag");
    });
    outbox.enqueue({ kind: "tag", output: "bad", by: "dana", tags: ["nope"] });
    outbox.enqueue({ kind: "tag", output: "good", by: "dana", tags: ["tone"] });
    const result = await outbox.flush();
    expect(result.sent).toBe(1);
    expect(result.rejected.map((e) => e.output)).toEqual(["bad"]);
    expect(outbox.pending()).toEqual([]);
    expect(outbox.rejected()[0]).toMatchObject({ output: "bad", failed: true, lastError: "refused: unknown tag" });
    // A refused entry is not merged into: a new change makes a new entry.
    outbox.enqueue({ kind: "tag", output: "bad", by: "dana", tags: ["tone"] });
    expect(outbox.pending()).toHaveLength(1);
    expect(outbox.rejected()).toHaveLength(1);
  });

  it("requeue and discard act on refused entries", async () => {
    const { outbox } = makeOutbox(async () => {
      throw new Error("refused");
    });
    outbox.enqueue({ kind: "tag", output: "a", by: "dana", tags: ["x"] });
    outbox.enqueue({ kind: "tag", output: "b", by: "dana", tags: ["x"] });
    await outbox.flush();
    const [a, b] = outbox.rejected();
    outbox.requeue(a!.id);
    expect(outbox.pending().map((e) => e.output)).toEqual(["a"]);
    expect(outbox.pending()[0]?.attempts).toBe(0);
    outbox.discard(b!.id);
    expect(outbox.entries().map((e) => e.output)).toEqual(["a"]);
  });

  it("does not drop changes merged while the entry was in flight", async () => {
    let release: () => void = () => {};
    const bodies: string[][] = [];
    const { outbox } = makeOutbox(
      (e) =>
        new Promise<void>((resolve) => {
          bodies.push([...e.tags]);
          release = resolve;
        }),
    );
    outbox.enqueue({ kind: "tag", output: "a", by: "dana", tags: ["tone"] });
    const flushing = outbox.flush();
    await Promise.resolve();
    outbox.enqueue({ kind: "tag", output: "a", by: "dana", tags: ["hallucination"] });
    release();
    await new Promise((r) => setTimeout(r, 0));
    release();
    await flushing;
    expect(bodies).toEqual([["tone"], ["tone", "hallucination"]]);
    expect(outbox.pending()).toEqual([]);
  });

  it("shares one flush between concurrent callers", async () => {
    const send = vi.fn(async () => {});
    const { outbox } = makeOutbox(send);
    outbox.enqueue({ kind: "tag", output: "a", by: "dana", tags: ["tone"] });
    await Promise.all([outbox.flush(), outbox.flush()]);
    expect(send).toHaveBeenCalledTimes(1);
  });
});

describe("persistence", () => {
  it("survives a reload: a new outbox on the same storage sees and sends the entries", async () => {
    const store = memoryStore();
    const first = makeOutbox(async () => {
      throw new Error("offline");
    }, store).outbox;
    first.enqueue({ kind: "tag", output: "a", by: "dana", tags: ["tone"], comment: "too long" });
    await first.flush();
    expect(JSON.parse(store.data[DEFAULT_KEY] ?? "[]")).toHaveLength(1);

    const sent: OutboxEntry[] = [];
    const second = makeOutbox(async (e) => {
      sent.push(e);
    }, store).outbox;
    expect(second.pending()).toHaveLength(1);
    await second.flush();
    expect(sent[0]).toMatchObject({ output: "a", tags: ["tone"], comment: "too long", attempts: 1 });
    expect(JSON.parse(store.data[DEFAULT_KEY] ?? "null")).toEqual([]);
  });

  it("works with the real localStorage", () => {
    localStorage.clear();
    const outbox = new Outbox({ storage: localStorage, send: async () => {} });
    outbox.enqueue({ kind: "tag", output: "a", by: "dana", tags: ["tone"] });
    const reloaded = new Outbox({ storage: localStorage, send: async () => {} });
    expect(reloaded.pending().map((e) => e.output)).toEqual(["a"]);
  });

  it("treats corrupt storage as empty instead of throwing", () => {
    const { outbox } = makeOutbox(undefined, memoryStore({ [DEFAULT_KEY]: "{not json" }));
    expect(outbox.pending()).toEqual([]);
    outbox.enqueue({ kind: "tag", output: "a", by: "dana", tags: ["tone"] });
    expect(outbox.pending()).toHaveLength(1);
  });

  it("notifies subscribers on every change", () => {
    const { outbox } = makeOutbox();
    const listener = vi.fn();
    const unsubscribe = outbox.subscribe(listener);
    outbox.enqueue({ kind: "tag", output: "a", by: "dana", tags: ["tone"] });
    expect(listener).toHaveBeenCalledTimes(1);
    unsubscribe();
    outbox.enqueue({ kind: "tag", output: "b", by: "dana", tags: ["tone"] });
    expect(listener).toHaveBeenCalledTimes(1);
  });
});

describe("backoffDelay", () => {
  it("doubles from one second and caps", () => {
    expect([0, 1, 2, 3, 4].map((n) => backoffDelay(n))).toEqual([0, 1000, 2000, 4000, 8000]);
    expect(backoffDelay(30)).toBe(60_000);
  });
});

describe("feedbackOps", () => {
  it("turns a first submission into one tag request", () => {
    expect(feedbackOps("o", "dana", EMPTY_FEEDBACK, { tags: ["tone"], rating: 3, comment: " meh " })).toEqual([
      { kind: "tag", output: "o", by: "dana", tags: ["tone"], rating: 3, comment: "meh" },
    ]);
  });

  it("sends only what changed, and removals as untag", () => {
    const before = { tags: ["tone", "hallucination"], rating: 3, comment: "meh" };
    const after = { tags: ["hallucination", "great-example"], rating: 3, comment: "meh" };
    expect(feedbackOps("o", "dana", before, after)).toEqual([
      { kind: "tag", output: "o", by: "dana", tags: ["great-example"] },
      { kind: "untag", output: "o", by: "dana", tags: ["tone"] },
    ]);
  });

  it("sends nothing when nothing changed or nothing was given", () => {
    expect(feedbackOps("o", "dana", EMPTY_FEEDBACK, EMPTY_FEEDBACK)).toEqual([]);
    const f = { tags: ["tone"], rating: 2, comment: "x" };
    expect(feedbackOps("o", "dana", f, { ...f, comment: "x " })).toEqual([]);
  });

  it("clears a comment with an empty one", () => {
    expect(feedbackOps("o", "dana", { tags: [], rating: null, comment: "x" }, EMPTY_FEEDBACK)).toEqual([
      { kind: "tag", output: "o", by: "dana", tags: [], comment: "" },
    ]);
  });
});
