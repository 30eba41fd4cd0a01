import { cleanup, fireEvent, screen, waitFor } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import { ApiError } from "../api/transport";
import { renderScreen } from "../runs/testing";

const api = vi.hoisted(() => ({ storeKey: vi.fn() }));
vi.mock("../api/client", () => ({ api }));

const { StoreKeyForm } = await import("./StoreKeyForm");

afterEach(() => {
  cleanup();
  vi.clearAllMocks();
});

const account = () => screen.getByLabelText("Keychain account");
const key = () => screen.getByLabelText("API key");

describe("StoreKeyForm", () => {
  it("shows what is missing and sends nothing", async () => {
    renderScreen(<StoreKeyForm accounts={[]} />);
    fireEvent.click(screen.getByTestId("store-key-submit"));
    expect(await screen.findByText(/Name the keychain account/)).toBeInTheDocument();
    expect(screen.getByText("Paste the API key.")).toBeInTheDocument();
    expect(key()).toHaveAttribute("aria-invalid", "true");
    expect(api.storeKey).not.toHaveBeenCalled();
  });

  it("sends the trimmed account and key, then clears the key", async () => {
    api.storeKey.mockResolvedValue(undefined);
    renderScreen(<StoreKeyForm accounts={["anthropic"]} initialAccount="anthropic" />);
    fireEvent.change(key(), { target: { value: "  sk-ant-0123456789 " } });
    fireEvent.click(screen.getByTestId("store-key-submit"));
    await waitFor(() => expect(api.storeKey).toHaveBeenCalledWith({ account: "anthropic", key: "sk-ant-0123456789" }));
    await waitFor(() => expect(key()).toHaveValue(""));
  });

  it("explains when the machine has no keychain (503)", async () => {
    api.storeKey.mockRejectedValue(new ApiError("keychain_unavailable", "no secret service is running (org.freedesktop.secrets)", 503));
    renderScreen(<StoreKeyForm accounts={[]} />);
    fireEvent.change(account(), { target: { value: "openai" } });
    fireEvent.change(key(), { target: { value: "sk-0123456789" } });
    fireEvent.click(screen.getByTestId("store-key-submit"));
    const alert = await screen.findByRole("alert");
    expect(alert).toHaveTextContent("The OS keychain is not available here");
    expect(alert).toHaveTextContent("no secret service is running");
    // The key stays so the person can retry after fixing the keychain.
    expect(key()).toHaveValue("sk-0123456789");
  });
});
