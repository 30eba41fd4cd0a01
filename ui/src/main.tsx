import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import "./index.css";
import { App } from "./App";
import { ensureValidLanguage } from "./app/locale";
import { applyTheme, storedTheme } from "./app/theme";

ensureValidLanguage();

applyTheme(storedTheme());
// On "system", follow the OS when it switches between light and dark.
window.matchMedia?.("(prefers-color-scheme: dark)").addEventListener?.("change", () => {
  if (storedTheme() === "system") applyTheme("system");
});

const root = document.getElementById("root");
if (root) {
  createRoot(root).render(
    <StrictMode>
      <App />
    </StrictMode>,
  );
}
