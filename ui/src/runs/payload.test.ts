import { describe, expect, it } from "vitest";
import type { JsonValue } from "../api/types.gen";
import { checkPayload, exampleFromSchema, optionalFields, schemaErrors } from "./payload";

// The invoice trigger of the demo's finance-invoice-review blueprint.
const invoice: JsonValue = {
  type: "object",
  required: ["vendor", "invoice_number", "amount", "currency", "due_date"],
  properties: {
    amount: { type: "number", exclusiveMinimum: 0 },
    currency: { type: "string", pattern: "^[A-Z]{3}$" },
    description: { type: "string" },
    due_date: { type: "string", format: "date" },
    invoice_number: { type: "string" },
    po_number: { type: "string" },
    vendor: { type: "string", minLength: 1 },
  },
};

describe("exampleFromSchema", () => {
  it("fills the required fields with placeholders of the right type", () => {
    const now = new Date("2025-07-01T10:00:00Z");
    expect(exampleFromSchema(invoice, now)).toEqual({
      vendor: "",
      invoice_number: "",
      amount: 1,
      currency: "",
      due_date: "2025-07-01",
    });
  });

  it("uses defaults, enums and nested objects", () => {
    const schema: JsonValue = {
      type: "object",
      properties: {
        plan: { enum: ["free", "pro"] },
        channel: { type: "string", default: "email" },
        customer: { type: "object", required: ["email"], properties: { email: { type: "string", format: "email" } } },
        urgent: { type: "boolean" },
        tags: { type: "array" },
      },
    };
    expect(exampleFromSchema(schema)).toEqual({
      plan: "free",
      channel: "email",
      customer: { email: "name@example.com" },
      urgent: false,
      tags: [],
    });
  });

  it("gives {} when the trigger has no schema", () => {
    expect(exampleFromSchema(null)).toEqual({});
  });

  it("lists optional fields left out of the example", () => {
    expect(optionalFields(invoice)).toEqual(["description", "po_number"]);
  });
});

describe("checkPayload", () => {
  it("accepts valid JSON that fits the schema", () => {
    const text = JSON.stringify({ vendor: "Paperline", invoice_number: "PL-1", amount: 12.5, currency: "EUR", due_date: "2025-07-31" });
    const res = checkPayload(text, invoice);
    expect(res.ok).toBe(true);
    if (res.ok) expect(res.value).toMatchObject({ vendor: "Paperline", amount: 12.5 });
  });

  it("reports a syntax error with its line and column", () => {
    const res = checkPayload('{\n  "vendor": "x",\n  "amount": 1,\n}', null);
    expect(res.ok).toBe(false);
    if (!res.ok) {
      expect(res.syntax).toBe(true);
      expect(res.errors[0]).toMatch(/^Line 4, column 1/);
    }
  });

  it("refuses an empty payload", () => {
    const res = checkPayload("   ", null);
    expect(res.ok).toBe(false);
  });

  it("names each schema problem", () => {
    const res = checkPayload(JSON.stringify({ vendor: "", invoice_number: "1", amount: 0, currency: "eur", due_date: 5 }), invoice);
    expect(res.ok).toBe(false);
    if (!res.ok) {
      expect(res.syntax).toBe(false);
      expect(res.errors).toEqual([
        "vendor: should not be empty",
        "amount: should be greater than 0",
        "currency: should match ^[A-Z]{3}$",
        "due_date: should be string, not integer",
      ]);
    }
  });

  it("reports missing required fields and wrong top-level types", () => {
    expect(schemaErrors({ vendor: "x" }, invoice)).toContain("amount: is required");
    expect(schemaErrors([], invoice)).toEqual(["payload: should be object, not array"]);
  });

  it("accepts any JSON when there is no schema", () => {
    expect(checkPayload("[1, 2]", null).ok).toBe(true);
  });
});
