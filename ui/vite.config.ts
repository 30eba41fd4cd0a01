/// <reference types="vitest/config" />
import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";
import tailwindcss from "@tailwindcss/vite";

// The dev server proxies the API to a running `processops serve` (default port 8686).
const engine = process.env.PROCESSOPS_URL ?? "http://127.0.0.1:8686";

export default defineConfig({
  plugins: [react(), tailwindcss()],
  // Relative asset paths: the same build is served by `processops serve` and by Tauri.
  base: "./",
  clearScreen: false,
  server: {
    port: 5173,
    strictPort: true,
    proxy: { "/api": engine, "/healthz": engine, "/hooks": engine },
  },
  build: {
    target: "es2022",
    chunkSizeWarningLimit: 2048,
  },
  test: {
    environment: "jsdom",
    setupFiles: ["./src/test-setup.ts"],
    include: ["src/**/*.test.{ts,tsx}"],
    css: false,
  },
});
