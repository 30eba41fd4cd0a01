// Test harness for the screens: a fresh query client (no retries) and a memory router.
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { render } from "@testing-library/react";
import type { ReactNode } from "react";
import { createMemoryRouter, RouterProvider } from "react-router";

// jsdom has no layout, so no scrollIntoView; the screens call it to keep selections in view.
if (!Element.prototype.scrollIntoView) Element.prototype.scrollIntoView = () => {};

export function renderScreen(element: ReactNode, { path = "/", route = "/" }: { path?: string; route?: string } = {}) {
  const client = new QueryClient({ defaultOptions: { queries: { retry: false }, mutations: { retry: false } } });
  const router = createMemoryRouter(
    [
      { path, element },
      { path: "*", element: <div data-testid="elsewhere" /> },
    ],
    { initialEntries: [route] },
  );
  const utils = render(
    <QueryClientProvider client={client}>
      <RouterProvider router={router} />
    </QueryClientProvider>,
  );
  return { ...utils, router, client };
}
