import { PageHeader } from "../components/ui";

export function EvaluatePage() {
  return <PageHeader title="Evaluate" />;
}
