import { PageHeader } from "../components/ui";

export function InboxPage() {
  return <PageHeader title="Inbox" />;
}
