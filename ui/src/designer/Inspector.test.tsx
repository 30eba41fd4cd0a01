import { act, cleanup, fireEvent, render, screen, within } from "@testing-library/react";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { Inspector } from "./Inspector";
import type { Schema } from "./schemaForms";
import { DesignerStore } from "./store";

const ROOT = join(__dirname, "../../../blueprints");
const schema = JSON.parse(readFileSync(join(ROOT, "schema.json"), "utf8")) as Schema;
const source = readFileSync(join(ROOT, "support-triage.yaml"), "utf8");

function open(nodeId: string) {
  const store = new DesignerStore({ blueprintId: "support-triage", source, savedSource: source, baseVersion: "v1", isNew: false, positions: {} });
  act(() => store.select([nodeId]));
  render(<Inspector store={store} schema={schema} />);
  return store;
}

function nodeOf(store: DesignerStore, id: string): Record<string, unknown> {
  const bp = parse(store.get().source) as { nodes: Record<string, unknown>[] };
  return bp.nodes.find((n) => n.id === id)!;
}

afterEach(cleanup);

describe("node inspector", () => {
  it("refuses an invalid id and explains the rule", () => {
    const store = open("incident");
    const input = screen.getByTestId("inspector-field-id");
    fireEvent.change(input, { target: { value: "Raise-Incident" } });
    expect(screen.getByRole("alert")).toHaveTextContent("Use lowercase letters, digits and _, starting with a letter.");
    fireEvent.keyDown(input, { key: "Enter" });
    fireEvent.blur(input);
    expect(store.get().source).toBe(source);
  });

  it("refuses an id another node has", () => {
    const store = open("incident");
    const input = screen.getByTestId("inspector-field-id");
    fireEvent.change(input, { target: { value: "classify" } });
    expect(screen.getByRole("alert")).toHaveTextContent("Another node is already called `classify`.");
    fireEvent.keyDown(input, { key: "Enter" });
    expect(store.get().source).toBe(source);
  });

  it("renames on Enter with a valid id and updates references", () => {
    const store = open("incident");
    const input = screen.getByTestId("inspector-field-id");
    fireEvent.change(input, { target: { value: "raise_incident" } });
    expect(screen.queryByRole("alert")).toBeNull();
    fireEvent.keyDown(input, { key: "Enter" });
    expect(store.get().selection).toEqual(["raise_incident"]);
    const rules = nodeOf(store, "by_category").rules as { to: unknown }[];
    expect(rules[0]!.to).toEqual(["raise_incident", "draft_technical"]);
  });

  it("flags a required field left empty", () => {
    open("agent_review");
    const role = screen.getByTestId("inspector-field-role");
    fireEvent.change(role, { target: { value: "" } });
    expect(screen.getByText("Role is required.")).toBeInTheDocument();
  });

  it("validates a duration as it is typed", () => {
    open("agent_review");
    const sla = screen.getByTestId("inspector-field-sla");
    fireEvent.change(sla, { target: { value: "four hours" } });
    expect(screen.getByText(/30m, 4h, 2d or 1w/)).toBeInTheDocument();
  });

  it("connects through the next select", () => {
    const store = open("incident");
    fireEvent.change(screen.getByTestId("inspector-field-next"), { target: { value: "reply_log" } });
    expect(nodeOf(store, "incident").next).toBe("reply_log");
  });

  it("edits review outcomes and keeps the rest of the file", () => {
    const store = open("agent_review");
    fireEvent.change(screen.getByTestId("inspector-field-on-escalated"), { target: { value: "manual_queue" } });
    expect(nodeOf(store, "agent_review").on).toEqual({ approved: ["send_reply", "reply_log"], rejected: "redraft", escalated: "manual_queue" });
    expect(store.get().source).toContain("template: &reply |");
    // One undo step brings the file back byte for byte.
    act(() => store.undo());
    expect(store.get().source).toBe(source);
  });

  it("offers the blueprint's agents in the agent picker", () => {
    open("classify");
    const picker = screen.getByTestId("inspector-field-agent");
    const options = within(picker).getAllByRole("option").map((o) => o.textContent);
    expect(options).toEqual(["triage · gpt-4o-mini", "triage_backup · gpt-4o", "billing_specialist · gpt-4o-mini", "technical_specialist · gpt-4o-mini", "generalist · gpt-4o-mini"]);
  });

  it("shows the validator's diagnostics for the node", () => {
    const store = open("classify");
    act(() =>
      store.setValidation(store.get().source, [
        { severity: "error", code: "unknown-agent", pointer: "/nodes/2/agent", line: 97, column: 12, message: "no agent is named `nope`", help: "define it under `agents:`" },
      ]),
    );
    expect(screen.getByTestId("inspector-problems")).toHaveTextContent("no agent is named `nope`");
    expect(screen.getAllByTestId("inspector-problem")[0]).toHaveTextContent("no agent is named `nope`");
  });
});
