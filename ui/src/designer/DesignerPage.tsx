import { PageHeader } from "../components/ui";

export function DesignerPage() {
  return <PageHeader title="Designer" />;
}
