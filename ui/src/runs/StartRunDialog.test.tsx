import { cleanup, fireEvent, screen, waitFor } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { BlueprintSummary } from "../api/types.gen";
import { renderScreen } from "./testing";

const api = vi.hoisted(() => ({ blueprints: vi.fn(), startRun: vi.fn() }));
vi.mock("../api/client", () => ({ api }));

const { StartRunDialog } = await import("./StartRunDialog");

const invoice: BlueprintSummary = {
  id: "finance-invoice-review",
  name: "Invoice review",
  description: "",
  domain: "Finance",
  version: "abc",
  stage: "approved",
  nodes: 6,
  triggers: [
    { id: "invoice-drop", kind: "folder_drop", input: null },
    {
      id: "invoice-form",
      kind: "manual",
      input: {
        type: "object",
        required: ["vendor", "amount"],
        properties: {
          vendor: { type: "string", minLength: 1 },
          amount: { type: "number", exclusiveMinimum: 0 },
          due_date: { type: "string", format: "date" },
        },
      },
    },
  ],
};

beforeEach(() => {
  api.blueprints.mockResolvedValue([invoice]);
  api.startRun.mockResolvedValue({ run_id: "01a2-run-0000-1111", duplicate: false, status: "running" });
});
afterEach(() => {
  cleanup();
  vi.clearAllMocks();
});

const payload = () => screen.findByTestId("start-run-payload") as Promise<HTMLTextAreaElement>;

describe("StartRunDialog", () => {
  it("prefills the payload from the manual trigger's schema", async () => {
    renderScreen(<StartRunDialog open onClose={() => {}} blueprintId="finance-invoice-review" />);
    expect(JSON.parse((await payload()).value)).toEqual({ vendor: "", amount: 1 });
    expect(screen.getByTestId("start-run-trigger")).toHaveValue("invoice-form");
  });

  it("refuses text that is not JSON and says where", async () => {
    renderScreen(<StartRunDialog open onClose={() => {}} />);
    fireEvent.change(await payload(), { target: { value: '{"vendor": "Paperline",' } });
    expect(screen.getByTestId("start-run-errors")).toHaveTextContent(/Line 1/);
    expect(screen.getByTestId("start-run-submit")).toBeDisabled();
    fireEvent.submit(screen.getByTestId("start-run-submit").closest("form")!);
    expect(api.startRun).not.toHaveBeenCalled();
  });

  it("shows schema problems and does not send", async () => {
    renderScreen(<StartRunDialog open onClose={() => {}} />);
    fireEvent.change(await payload(), { target: { value: '{"vendor": "", "amount": 0}' } });
    expect(screen.getByTestId("start-run-errors")).toHaveTextContent("vendor: should not be empty");
    expect(screen.getByTestId("start-run-errors")).toHaveTextContent("amount: should be greater than 0");
    expect(screen.getByTestId("start-run-submit")).toBeDisabled();
    expect(api.startRun).not.toHaveBeenCalled();
  });

  it("starts the run with the parsed payload and opens it", async () => {
    const onClose = vi.fn();
    const { router } = renderScreen(<StartRunDialog open onClose={onClose} />);
    fireEvent.change(await payload(), { target: { value: '{"vendor": "Paperline", "amount": 120.5}' } });
    fireEvent.click(screen.getByTestId("start-run-submit"));
    await waitFor(() =>
      expect(api.startRun).toHaveBeenCalledWith({
        blueprint: "finance-invoice-review",
        trigger: "invoice-form",
        payload: { vendor: "Paperline", amount: 120.5 },
      }),
    );
    await waitFor(() => expect(router.state.location.pathname).toBe("/runs/01a2-run-0000-1111"));
    expect(onClose).toHaveBeenCalled();
  });

  it("adds an optional field on click", async () => {
    renderScreen(<StartRunDialog open onClose={() => {}} />);
    await payload();
    fireEvent.click(screen.getByRole("button", { name: "due_date" }));
    expect(JSON.parse((await payload()).value)).toEqual({ vendor: "", amount: 1, due_date: expect.stringMatching(/^\d{4}-\d{2}-\d{2}$/) });
  });

  it("switching to a trigger without a schema resets the payload to {}", async () => {
    renderScreen(<StartRunDialog open onClose={() => {}} />);
    await payload();
    fireEvent.change(screen.getByTestId("start-run-trigger"), { target: { value: "invoice-drop" } });
    expect((await payload()).value).toBe("{}");
  });
});
