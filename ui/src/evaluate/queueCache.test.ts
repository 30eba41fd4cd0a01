import { describe, expect, it } from "vitest";
import { ApiError } from "../api/transport";
import type { QueueItem } from "../api/types.gen";
import { loadQueue } from "./queueCache";

const item = { output: "r:a:1", text: "hello" } as QueueItem;

function store() {
  const data: Record<string, string> = {};
  return { data, getItem: (k: string) => data[k] ?? null, setItem: (k: string, v: string) => void (data[k] = v) };
}

describe("loadQueue", () => {
  it("returns the engine's queue and keeps a copy", async () => {
    const s = store();
    expect(await loadQueue("dana", async () => [item], s, 5)).toEqual({ items: [item], cachedAt: null });
    expect(Object.values(s.data)).toHaveLength(1);
  });

  it("falls back to the copy when the engine is unreachable", async () => {
    const s = store();
    await loadQueue("dana", async () => [item], s, 5);
    const offline = await loadQueue("dana", async () => Promise.reject(new ApiError("unreachable", "cannot reach")), s);
    expect(offline).toEqual({ items: [item], cachedAt: 5 });
  });

  it("does not hide refusals or serve another evaluator's copy", async () => {
    const s = store();
    await loadQueue("dana", async () => [item], s, 5);
    await expect(loadQueue("dana", async () => Promise.reject(new ApiError("forbidden", "not an evaluator", 403)), s)).rejects.toThrow(
      "not an evaluator",
    );
    await expect(loadQueue("lee", async () => Promise.reject(new ApiError("unreachable", "cannot reach")), s)).rejects.toThrow("cannot reach");
  });
});
