import { PageHeader } from "../components/ui";

export function BlueprintsPage() {
  return <PageHeader title="Blueprints" />;
}
