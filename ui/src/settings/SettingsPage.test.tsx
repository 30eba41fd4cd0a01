import { cleanup, fireEvent, screen, within } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { renderScreen } from "../runs/testing";

const api = vi.hoisted(() => ({ settings: vi.fn(), storeKey: vi.fn(), syncStatus: vi.fn(), enrolHub: vi.fn() }));
vi.mock("../api/client", () => ({ api }));
const setActAs = vi.fn();
vi.mock("../app/me", () => ({
  useMe: () => ({
    name: "dana",
    roles: ["support-agent"],
    setActAs,
    me: {
      name: "dana",
      roles: ["support-agent"],
      single_user: false,
      users: [
        { name: "dana", roles: ["support-agent"] },
        { name: "lee", roles: ["support-lead", "evaluator"] },
      ],
    },
  }),
}));

const { SettingsPage } = await import("./SettingsPage");

const LOCAL_ONLY = {
  enrolled: false, hub: null, team: null, user: null, device: null, online: null,
  pending: 0, cursor: 0, last_sync_at: null, last_error: null, open_conflicts: 0,
};

beforeEach(() => {
  api.syncStatus.mockResolvedValue(LOCAL_ONLY);
  localStorage.clear();
  document.documentElement.classList.remove("dark");
  api.settings.mockResolvedValue({
    project: "/srv/project",
    settings_file: "/srv/project/processops.toml",
    providers: [
      { name: "default", kind: "builtin", base_url: null, model: null, key_source: "none", key_name: null, key_present: false },
      { name: "claude", kind: "anthropic", base_url: null, model: null, key_source: "keychain", key_name: "anthropic", key_present: false },
      { name: "gpt", kind: "openai", base_url: "https://api.openai.com/v1", model: null, key_source: "env", key_name: "OPENAI_API_KEY", key_present: true },
    ],
    agents: [
      { blueprint: "support-triage", name: "triage", provider: "default", model: "gpt-4o-mini", permissions: [] },
      { blueprint: "support-triage", name: "billing", provider: "claude", model: "claude-haiku", permissions: ["read-invoices"] },
    ],
  });
});
afterEach(() => {
  cleanup();
  vi.clearAllMocks();
});

describe("SettingsPage", () => {
  it("shows the hub link when enrolled, and how to enrol when not", async () => {
    renderScreen(<SettingsPage />);
    // Not enrolled: the form connects with the hub's address and a one-time code.
    await screen.findByTestId("hub-url");
    expect(screen.getByTestId("hub-connect")).toBeDisabled();
    api.enrolHub.mockRejectedValueOnce(new Error("the hub at https://hub.acme.test refused the enrolment: the code is unknown or used"));
    fireEvent.change(screen.getByTestId("hub-url"), { target: { value: " https://hub.acme.test " } });
    fireEvent.change(screen.getByTestId("hub-code"), { target: { value: "K7PQM-2XWRT" } });
    fireEvent.click(screen.getByTestId("hub-connect"));
    expect(await screen.findByRole("alert")).toHaveTextContent("the code is unknown or used");
    expect(api.enrolHub).toHaveBeenCalledWith({ url: "https://hub.acme.test", code: "K7PQM-2XWRT" });
    cleanup();
    api.syncStatus.mockResolvedValue({
      ...LOCAL_ONLY,
      enrolled: true,
      hub: "https://hub.acme.test",
      team: "acme",
      user: "dana",
      device: "0193c0de-0000-7000-8000-000000000001",
      online: false,
      pending: 2,
      cursor: 41,
      last_error: "cannot reach the hub: connection refused",
      open_conflicts: 1,
    });
    renderScreen(<SettingsPage />);
    const hub = await screen.findByTestId("hub-settings");
    expect(within(hub).getByText("https://hub.acme.test")).toBeInTheDocument();
    expect(hub).toHaveTextContent("2 change(s) waiting · 1 open conflict(s) · hub position 41");
    expect(within(hub).getByText(/connection refused/)).toBeInTheDocument();
    expect(screen.getByText("Offline")).toBeInTheDocument();
  });

  it("switches to the dark theme and remembers it", async () => {
    renderScreen(<SettingsPage />);
    fireEvent.click(screen.getByTestId("settings-theme-dark"));
    expect(document.documentElement).toHaveClass("dark");
    expect(localStorage.getItem("processops.theme")).toBe("dark");
    expect(screen.getByTestId("settings-theme-dark")).toHaveAttribute("aria-checked", "true");
    fireEvent.click(screen.getByTestId("settings-theme-light"));
    expect(document.documentElement).not.toHaveClass("dark");
    // "System" leaves the class alone here (jsdom prefers light) but must still show as chosen.
    fireEvent.click(screen.getByTestId("settings-theme-system"));
    expect(screen.getByTestId("settings-theme-system")).toHaveAttribute("aria-checked", "true");
    expect(localStorage.getItem("processops.theme")).toBeNull();
  });

  it("offers the keychain form only for keychain providers, prefilled with the account", async () => {
    renderScreen(<SettingsPage />);
    const table = await screen.findByTestId("settings-providers");
    expect(within(table).getAllByRole("button").map((b) => b.textContent)).toEqual(["Store key"]);
    expect(within(table).getByText("Missing")).toBeInTheDocument();
    expect(within(table).getByText("Present")).toBeInTheDocument();
    fireEvent.click(screen.getByTestId("store-key-claude"));
    expect(within(table).getByLabelText("Keychain account")).toHaveValue("anthropic");
  });

  it("lists agents by blueprint with their permissions", async () => {
    renderScreen(<SettingsPage />);
    const agents = await screen.findByTestId("settings-agents");
    expect(within(agents).getByText("support-triage")).toBeInTheDocument();
    expect(within(agents).getByText("read-invoices")).toBeInTheDocument();
    expect(within(agents).getAllByRole("row")).toHaveLength(4);
  });

  it("acts as someone else from the directory", async () => {
    renderScreen(<SettingsPage />);
    fireEvent.change(screen.getByTestId("settings-act-as"), { target: { value: "lee" } });
    expect(setActAs).toHaveBeenCalledWith("lee");
  });
});
