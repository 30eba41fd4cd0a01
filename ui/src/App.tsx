import { lazy, Suspense } from "react";
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { createHashRouter, Navigate, RouterProvider } from "react-router";
import { Toaster } from "sonner";
import { Layout } from "./app/Layout";
import { MeProvider } from "./app/me";
import { BlueprintsPage } from "./blueprints/BlueprintsPage";
import { DesignerPage } from "./designer/DesignerPage";
import { EvaluatePage } from "./evaluate/EvaluatePage";
import { InboxPage } from "./inbox/InboxPage";
import { RunsPage } from "./runs/RunsPage";
import { SettingsPage } from "./settings/SettingsPage";

// The metrics screen and its chart library load on first visit: the other screens never wait
// for them (and a chart problem cannot keep the app from starting).
const MetricsPage = lazy(() => import("./metrics/MetricsPage").then((m) => ({ default: m.MetricsPage })));
// Change control is a governance screen most people rarely open: it loads on first visit too.
const VersionsPage = lazy(() => import("./versions/VersionsPage").then((m) => ({ default: m.VersionsPage })));

export const queryClient = new QueryClient({
  defaultOptions: {
    queries: { retry: 1, refetchOnWindowFocus: true, staleTime: 2_000 },
  },
});

// Hash routes work the same in the Tauri webview and behind `processops serve`.
const router = createHashRouter([
  {
    path: "/",
    element: <Layout />,
    children: [
      { index: true, element: <Navigate to="/inbox" replace /> },
      { path: "inbox", element: <InboxPage /> },
      { path: "inbox/:taskId", element: <InboxPage /> },
      { path: "designer", element: <DesignerPage /> },
      { path: "designer/:blueprintId", element: <DesignerPage /> },
      { path: "runs", element: <RunsPage /> },
      { path: "runs/:runId", element: <RunsPage /> },
      { path: "evaluate", element: <EvaluatePage /> },
      {
        path: "metrics",
        element: (
          <Suspense fallback={null}>
            <MetricsPage />
          </Suspense>
        ),
      },
      { path: "blueprints", element: <BlueprintsPage /> },
      {
        path: "blueprints/:id/versions",
        element: (
          <Suspense fallback={null}>
            <VersionsPage />
          </Suspense>
        ),
      },
      { path: "settings", element: <SettingsPage /> },
      { path: "*", element: <Navigate to="/inbox" replace /> },
    ],
  },
]);

export function App() {
  return (
    <QueryClientProvider client={queryClient}>
      <MeProvider>
        <RouterProvider router={router} />
        <Toaster position="bottom-right" richColors closeButton />
      </MeProvider>
    </QueryClientProvider>
  );
}
