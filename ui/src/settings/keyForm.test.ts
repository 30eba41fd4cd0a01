import { describe, expect, it } from "vitest";
import { isValid, validateKeyForm } from "./keyForm";

describe("validateKeyForm", () => {
  it("accepts an account and a plausible key", () => {
    const errors = validateKeyForm({ account: "anthropic", key: "  sk-ant-1234567890  " });
    expect(errors).toEqual({});
    expect(isValid(errors)).toBe(true);
  });

  it("requires both fields", () => {
    const errors = validateKeyForm({ account: " ", key: "" });
    expect(errors.account).toMatch(/keychain account/);
    expect(errors.key).toMatch(/Paste the API key/);
    expect(isValid(errors)).toBe(false);
  });

  it("rejects account names the keychain would not match", () => {
    expect(validateKeyForm({ account: "open ai", key: "sk-12345678" }).account).toBeDefined();
    expect(validateKeyForm({ account: "-x", key: "sk-12345678" }).account).toBeDefined();
    expect(validateKeyForm({ account: "team.openai_prod@eu-1", key: "sk-12345678" }).account).toBeUndefined();
  });

  it("catches paste mistakes in the key", () => {
    expect(validateKeyForm({ account: "a", key: "sk-1234\n5678" }).key).toMatch(/spaces or line breaks/);
    expect(validateKeyForm({ account: "a", key: "short" }).key).toMatch(/too short/);
    expect(validateKeyForm({ account: "a", key: "x".repeat(5000) }).key).toMatch(/longer/);
  });
});
